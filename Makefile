# Every target builds .venv on first use, so any of them works first on a fresh clone.
SYSTEM ?= ads
SCALE ?=
DATA ?=
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
SCALE_ARG := $(if $(SCALE),--scale $(SCALE),)
DATA_ARG := $(if $(DATA),--data $(DATA),)
SET ?=
SET_ARG := $(foreach override,$(SET),--set $(override))

.PHONY: help install train serve evaluate online abtest offline-vs-online continual test bench bench-online-store bench-distributed mlflow-ui pretrain-image-encoder clean

help:
	@echo "make train SYSTEM=ads [SCALE=tiny]   generate data, features (Feast), train, register the champion"
	@echo "make train SYSTEM=game DATA=/path    train on the public files instead of the world (game, events, pymk)"
	@echo "make train SYSTEM=newsfeed SET=features.text_encoder.kind=lsa   override config values (space-separated)"
	@echo "make train SYSTEM=video WORKERS=2    the torch models data parallel on Ray Train workers (RAY_ADDRESS: a cluster)"
	@echo "make serve SYSTEM=ads [PORT=8000]    serve the endpoint (trains first if no champion)"
	@echo "make evaluate SYSTEM=ads             print the latest test table (WRITE_README=1: into the system's README)"
	@echo "make online SYSTEM=ads [DAYS=2]      champion, baseline and oracle policy on the online simulator (WRITE_README=1)"
	@echo "make abtest SYSTEM=ads A=champion B=lightgbm [DAYS=2]   an A/B test on the simulator: plan, CI, split check"
	@echo "make offline-vs-online SYSTEM=ads    every trained model online: does the offline metric order them as online?"
	@echo "make continual SYSTEM=ads [DAYS=7]   daily retraining, gate, A/B and promotion against a frozen model (WRITE_README=1)"
	@echo "make bench SYSTEM=ads [K=10]         latency / throughput / memory of the endpoint (WRITE_README=1 too)"
	@echo "make bench SYSTEM=ads SOAK=600       concurrency 8 for 600 s: errors, and whether server memory grows"
	@echo "make bench-online-store              p50 / p99 of Feast's online read, Redis beside SQLite"
	@echo "make bench-distributed [WORKERS=2]   two-tower fit and catalogue embedding: this process vs Ray"
	@echo "make mlflow-ui                       MLflow UI on http://127.0.0.1:5000"
	@echo "make pretrain-image-encoder          the shipped image encoder's weights again (harmful reads them; minutes)"
	@echo "make test                            the whole test suite"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

train: $(VENV)/.installed
	$(PY) -m common.app.cli train --system $(SYSTEM) $(SCALE_ARG) $(DATA_ARG) $(SET_ARG) $(if $(WORKERS),--workers $(WORKERS),)

serve: $(VENV)/.installed
	$(PY) -m common.app.cli serve --system $(SYSTEM) $(SCALE_ARG) --port $(PORT)

evaluate: $(VENV)/.installed
	$(PY) -m common.app.cli evaluate --system $(SYSTEM) $(if $(WRITE_README),--write-readme,)

DAYS_ARG := $(if $(DAYS),--days $(DAYS),)
README_ARG := $(if $(WRITE_README),--write-readme,)

online: $(VENV)/.installed
	$(PY) -m common.app.cli online --system $(SYSTEM) $(SCALE_ARG) $(DAYS_ARG) $(README_ARG)

abtest: $(VENV)/.installed
	$(PY) -m common.app.cli abtest --system $(SYSTEM) $(SCALE_ARG) --a $(A) --b $(B) $(DAYS_ARG) $(README_ARG)

offline-vs-online: $(VENV)/.installed
	$(PY) -m common.app.cli offline-vs-online --system $(SYSTEM) $(SCALE_ARG) $(DAYS_ARG) $(README_ARG)

continual: $(VENV)/.installed
	$(PY) -m common.app.cli continual --system $(SYSTEM) $(SCALE_ARG) $(DAYS_ARG) $(README_ARG)

bench: $(VENV)/.installed
	$(PY) -m common.app.cli bench --system $(SYSTEM) --url http://127.0.0.1:$(PORT) $(if $(K),--k $(K),) $(if $(SOAK),--soak $(SOAK),) $(if $(WRITE_README),--write-readme,)

bench-online-store: $(VENV)/.installed
	$(PY) -m common.bench.online_store $(if $(WRITE_README),--write-readme,)

bench-distributed: $(VENV)/.installed
	$(PY) -m common.bench.distributed $(if $(WORKERS),--workers $(WORKERS),) $(if $(WRITE_README),--write-readme,)

mlflow-ui: $(VENV)/.installed
	$(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/data/mlflow.db} --host 127.0.0.1 --port 5000

pretrain-image-encoder: $(VENV)/.installed
	$(PY) -m common.images.pretrained --system harmful

test: $(VENV)/.installed
	$(PY) -m pytest

clean:
	rm -rf data/*/ data/mlflow.db
