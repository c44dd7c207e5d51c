# The organizers build this image, then run train_model.py and run_model.py inside it without network.
# The tag matches requirements.txt's torch; if a registry lacks it, build with
# --build-arg BASE_IMAGE=pytorch/pytorch:<torch>-cuda<x.y>-cudnn9-runtime (and pin that torch in requirements.txt).
# CUDA 13.0 needs an NVIDIA driver >= 580.65.06 on the host (580 branch or newer). For an older driver pick a
# base of an older CUDA (12.8: driver >= 570); with a driver too old the entry warns once and runs on the CPU.
ARG BASE_IMAGE=pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime
FROM ${BASE_IMAGE}

# ultralytics must never reach the network: settings inside /challenge, offline mode.
ENV YOLO_OFFLINE=1 \
    YOLO_CONFIG_DIR=/challenge/.ultralytics \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

## DO NOT EDIT the following 3 lines.
RUN mkdir /challenge
COPY ./ /challenge
WORKDIR /challenge

## Install your dependencies here using apt install, etc.
RUN pip install --no-cache-dir -r requirements.txt \
    && mkdir -p /challenge/.ultralytics/Ultralytics \
    && cp "$(python -c 'import matplotlib, os; print(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data/fonts/ttf/DejaVuSans.ttf"))')" \
       /challenge/.ultralytics/Ultralytics/Arial.ttf
