"""Feast's file registry, written atomically. Feast's own FileRegistryStore truncates registry.db and then
writes it, and writes it several times per training (apply, then once per materialised view): a training
killed in between would leave an empty registry, and a server started after it could not read a feature.
Feast takes the store's class by name (RepoConfig's registry_store_type), its extension point for this."""

from __future__ import annotations

import uuid

from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.utils import _utc_now

from common.data.atomic import replaced_atomically


class AtomicFileRegistryStore(FileRegistryStore):  # Feast requires the name to end in "RegistryStore"
    def _write_registry(self, registry_proto: RegistryProto) -> None:
        # What FileRegistryStore._write_registry records, then one rename instead of an overwrite.
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        self._filepath.parent.mkdir(exist_ok=True)
        with replaced_atomically(self._filepath) as temporary:
            temporary.write_bytes(registry_proto.SerializeToString())
