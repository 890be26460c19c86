"""Maps the repository's folders onto the one installed namespace, ``coldgate.*``.

The customer's top-level folders (``gateway/``, ``cloud/``) and the contract and
simulator stay where they are in the repository, but a wheel must put nothing at
the top of site-packages except ``coldgate``: packages called ``gateway``,
``cloud`` and ``simulator`` already exist on the package index.  pyproject.toml
can map folders (``package-dir``) but cannot *find* the packages below several
mapped folders, so this file does only that; everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

#: Import path -> folder in the repository (README.md shows the same table).
ROOTS = {
    "coldgate": "coldgate",
    "coldgate.contract": "contract",
    "coldgate.gateway": "gateway",
    "coldgate.cloud": "cloud",
    "coldgate.simulator": "simulator",
}


def _packages() -> list[str]:
    # Namespace discovery also lists the data folders (contract/schema, sensors/profiles, llrp/fixtures),
    # which package-data ships; plain discovery leaves them out and setuptools warns it "would ignore" them.
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]
    return found


setup(package_dir=ROOTS, packages=_packages())
