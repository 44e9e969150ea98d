# The project image of docker-compose.yml: the training job, the API and the MLflow tracking server.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# LightGBM's wheel links against the system's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# torch from the CPU index first: the project's pin (torch==2.13.0) is then met by the CPU build, and pip does
# not pull the CUDA build from PyPI.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /app

# The pinned dependencies alone, read from pyproject.toml, so that editing the code does not reinstall them.
# boto3: the MLflow server writes artifacts to the S3 bucket (training and the API never talk to S3).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt boto3==1.44.5 \
    && rm /tmp/requirements.txt

# Editable, as `make install` does: configs/ is read from the source tree (common/app/paths.py), which a plain
# install into site-packages would leave behind.
COPY configs ./configs
COPY common ./common
COPY systems ./systems
RUN pip install --no-deps -e .

# Run as an unprivileged user; /data is the shared data volume (MLSD_DATA_DIR), created here so that a new
# named volume takes its owner.
RUN useradd --create-home --uid 1000 mlsd && mkdir /data && chown mlsd /data
USER mlsd
WORKDIR /home/mlsd

CMD ["python", "-m", "common.app.cli", "--help"]
