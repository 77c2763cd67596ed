from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent

setup(
    name="channels-binding",
    version="2.0.0.dev0",
    description=(
        "Django models as a live JSON API over one websocket and over HTTP, "
        "built on Channels and Django REST framework."
    ),
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="MIT",
    license_files=["LICENSE"],
    # Namespace packages, so that channels_binding/static/ (data files only) is part
    # of the package as the folder it is; MANIFEST.in names the files to ship.
    packages=find_namespace_packages(include=["channels_binding", "channels_binding.*"]),
    include_package_data=True,
    python_requires=">=3.10",
    # What `make test-matrix` tests (noxfile.py): every Django below, on each
    # Python it supports, with the newest Channels, DRF and daphne; and the lowest
    # versions these ranges allow, on Python 3.10 with Django 5.2.
    install_requires=[
        "Django>=5.2,<6.2",
        "channels>=4.1.0",
        "djangorestframework>=3.15.2",
        "daphne>=4.1.0",
    ],
    extras_require={
        "redis": ["channels-redis>=4.2"],
        "filter": ["django-filter>=24"],
        "jwt": ["djangorestframework-simplejwt>=5.3"],
        "test": [
            "pytest>=8",
            "pytest-django>=4.9",
            "pytest-asyncio>=0.24",
            "hypothesis>=6.100",
            "websockets>=13",
            "ruff>=0.8",
            "channels-redis>=4.2",
            "django-filter>=24",
            "djangorestframework-simplejwt>=5.3",
            "sphinx>=7",
            "uvicorn>=0.30",
            "playwright>=1.45",
            # tests/test_packaging.py, tests/test_asyncapi.py
            "build>=1.2",
            "twine>=5",
            "jsonschema>=4.18",
        ],
        # make test-matrix
        "matrix": ["nox>=2024.4.15"],
        # make bench: the comparison servers and the load client.
        "bench": [
            "djangochannelsrestframework>=1.3",
            "channels-redis>=4.2",
            "uvicorn>=0.30",
            "websockets>=13",
        ],
    },
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
