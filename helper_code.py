#!/usr/bin/env python
"""Our copy of the organizers' helper: the same function names, arguments, return values and edge cases.

The organizers replace this file with theirs; team_code.py does not import it, and our train_model.py /
run_model.py only use functions both copies share. The implementations live in paperecg.records (files and
header fields) and paperecg.score.metrics (metrics); this module adds the organizers' error behaviour where
it differs (e.g. a missing '# Labels:' line raises here, while the package returns None).
"""
import os

import numpy as np  # noqa: F401  (the organizers' helper exposes numpy at import time)

from paperecg.records.header import (  # noqa: F401
    IMAGE_PREFIX as substring_images,
    LABELS_PREFIX as substring_labels,
    cast_int_float_unknown,
    get_adc_gains,
    get_adc_resolutions,
    get_adc_zeros,
    get_baselines,
    get_block_sizes,
    get_checksums,
    get_initial_values,
    get_num_samples,
    get_num_signals,
    get_record_name,
    get_sampling_frequency,
    get_signal_files_from_header,
    get_signal_formats,
    get_signal_names,
    get_signal_units,
    get_variable,
    get_variables,
    is_finite_number,
    is_integer,
    is_nan,
    is_number,
)
from paperecg.records.io import (  # noqa: F401
    find_records,
    load_header,
    load_text,
    save_header,
    save_labels,
    save_text,
)
from paperecg.records.io import header_path as get_header_file  # noqa: F401
from paperecg.records.io import load_signal as load_signals  # noqa: F401
from paperecg.records.io import save_signal as save_signals  # noqa: F401
from paperecg.score.metrics import *  # noqa: F401,F403  (compute_f_measure, compute_snr, align_signals, ...)


# The organizers' parsing, kept exactly: only the '# Image:' / '# Labels:' spellings, empty entries kept ('').
# The package's own parsing (paperecg.records.header) is more lenient; team code uses that one.
def get_image_files_from_header(string):
    images, has_image = get_variables(string, substring_images)
    if not has_image:
        raise Exception("No images available: did you forget to generate or include the images?")
    return images


def get_labels_from_header(string):
    labels, has_labels = get_variables(string, substring_labels)
    if not has_labels:
        raise Exception("No labels available: are you trying to load the labels from the held-out data, or "
                        "did you forget to prepare the data to include the labels?")
    return labels


def get_signal_files(record):
    return get_signal_files_from_header(load_header(record))


def get_image_files(record):
    return get_image_files_from_header(load_header(record))


def load_labels(record):
    return get_labels_from_header(load_header(record))


def load_images(record):
    """PIL images named in the header that exist on disk (missing files are skipped, like the organizers')."""
    from PIL import Image

    folder = os.path.split(record)[0]
    images = []
    for name in get_image_files(record):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            images.append(Image.open(path))
    return images
