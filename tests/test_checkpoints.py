"""Every shipped checkpoint still reaches the test metric it recorded when it was trained."""
import pytest

from xai_core.models import evaluate_model, load_model
from xai_core.models.checkpoints import read_metadata
from xai_core.models.zoo import SHIPPED_DIR
from xai_core.data import DATASETS, load_dataset
from xai_core.data.user import USER_SIZE

CHECKPOINTS = sorted(SHIPPED_DIR.glob("*.safetensors"))


def test_every_bundled_dataset_has_a_default_checkpoint():
    bundled = [n for n in DATASETS if DATASETS.get(n).size != USER_SIZE]  # a user's import left in the cache has none
    missing = [n for n in bundled if not (SHIPPED_DIR / f"{n}__{DATASETS.get(n).default_arch}.safetensors").exists()]
    assert not missing, (f"no shipped default checkpoint for {missing}; "
                         f"run python -m xai_core.models.ship {' '.join(missing)}")


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[p.stem for p in CHECKPOINTS])
def test_checkpoint_reaches_its_recorded_metric(path):
    meta = read_metadata(path)
    ds = load_dataset(meta["dataset"])
    assert ds.fingerprint() == meta["dataset_fingerprint"], "the simulator's output changed since training"
    model, _ = load_model(meta["dataset"], str(path))
    got = evaluate_model(model, ds.X[ds.test_idx], ds.y[ds.test_idx])
    value = got["auroc"] if meta["metric_name"] == "auroc" else got["accuracy"]
    assert value == pytest.approx(meta["metric_value"], abs=1e-4)
