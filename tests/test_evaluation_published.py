"""Tests of companion.evaluation.published: the table of published MNIST likelihoods that chapters 5
and 9 set beside the book's models."""

import re

import pytest

from companion.evaluation import published
from conftest import REPO_ROOT


def test_every_record_is_complete_and_cited():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (REPO_ROOT / "book" / "references.bib").read_text(), flags=re.M))
    for r in published.MNIST_NLL:
        assert r.cite in keys, f"{r.model}: {r.cite!r} is not in book/references.bib"
        assert r.binarization in published.BINARIZATIONS and r.decoder in published.DECODERS
        # A model without latents has an exact likelihood; a latent-variable model's is an estimate.
        assert (r.k is None) == (r.stochastic_layers == 0) == (r.decoder == "none"), r
        # Every figure on binarized MNIST lies between a strong model's and independent pixels'.
        assert 75 < r.nll < 100, r


def test_no_model_is_listed_twice_under_one_protocol():
    pairs = [(r.model, r.binarization) for r in published.MNIST_NLL]
    assert len(pairs) == len(set(pairs))


def test_selection_by_protocol_and_decoder():
    dynamic = published.mnist_nll(binarization="dynamic")
    assert dynamic and all(r.binarization == "dynamic" for r in dynamic)
    both = published.mnist_nll(binarization="static", decoder="autoregressive")
    assert {r.model for r in both} == {"VLAE (PixelCNN decoder, flow prior)", "PixelVAE (gated PixelCNN decoder)"}
    assert len(published.mnist_nll()) == len(published.MNIST_NLL)


@pytest.mark.parametrize("kwargs", [{"binarization": "Dynamic"}, {"decoder": "pixelcnn"}])
def test_unknown_selection_is_refused_by_name(kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}='{value}'"):
        published.mnist_nll(**kwargs)


def test_every_record_names_its_paper_for_the_reader():
    for r in published.MNIST_NLL:
        assert r.reference.endswith(r.where) and re.match(r"^[a-zA-Z ]+ et al\. \(20\d\d\), ", r.reference), r.reference
