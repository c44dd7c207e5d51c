"""Classification: image branch (ResNet50 on the page), signal branch (1-D CNN on the digitized signal),
fusion and per-class thresholds. `Classifier.load(dir).predict(images, signal, header)` at inference;
`train_classifier(...)` / `python -m paperecg.classify.train` to train."""
from .model import Classifier, ClassifierConfig  # noqa: F401


def __getattr__(name: str):
    # imported lazily so `python -m paperecg.classify.train` does not import train.py twice
    if name == "train_classifier":
        from .train import train_classifier
        return train_classifier
    raise AttributeError(name)
