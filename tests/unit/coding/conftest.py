import pytest

from shared import icd10cm


@pytest.fixture(scope="session", autouse=True)
def _code_set():
    """Load the ICD-10-CM code set once for the whole coding test session."""
    icd10cm.load()
