#!/usr/bin/env python
"""The team's entry points, called by the organizers' train_model.py and run_model.py.

Thin on purpose: the work lives in the paperecg package (see ARCHITECTURE.md). This file imports nothing
from helper_code, so it works with our copy or the organizers'.
"""
from paperecg.pipeline import entry, training


def train_models(data_folder, model_folder, verbose):
    training.train(data_folder, model_folder, bool(verbose))


def load_models(model_folder, verbose):
    return entry.load(model_folder, bool(verbose))


def run_models(record, digitization_model, classification_model, verbose):
    return entry.run(record, digitization_model, classification_model, bool(verbose))
