# One entry point for setup, tests, the demo and the long jobs.
# Everything lands in .venv (which also becomes the ROS 2 prefix); re-running is a no-op.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps.stamp
ROS_STAMP := $(VENV)/.robot_runtime_ros.stamp
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test lint demo policies policy-coverage results-xor bench-train bench-swarm clean

setup: $(DEPS_STAMP) $(ROS_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Python deps: exact pins from requirements.txt as constraints, the project in editable mode.
$(DEPS_STAMP): pyproject.toml requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.txt -e ".[train,dev]"
	touch $@

# ROS 2 Kilted wheels + msgs/ built into the venv (the script keeps its own stamp).
$(ROS_STAMP): $(DEPS_STAMP) requirements-ros.txt scripts/setup_ros.sh $(wildcard msgs/* msgs/msg/*)
	bash scripts/setup_ros.sh $(VENV)

test: setup
	$(VENV)/bin/ruff check robot_runtime training sim tests launch benchmarks
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check robot_runtime training sim tests launch benchmarks

# The main job: the bundled policy, sim-in-the-loop: the VMAS world node plus one ROS 2 node
# per robot, separate processes over Fast DDS on this host.
demo: setup
	$(VENV)/bin/robot-runtime swarm --robots 2 --policy policies/xor/policy.onnx --scenario xor \
		--episodes 200 --seed 0 --json runs/demo/swarm.json

# Long jobs (not part of the tests).
# Retrain every shipped policy from scratch (fixed seeds); recipes in policies/*/RECIPE.md.
policies: setup
	$(VENV)/bin/robot-runtime train --scenario xor --method diamond --n-agents 2 --seed 0 \
		--iterations 60 --no-progress --out runs/policies/xor
	mkdir -p policies/xor && cp runs/policies/xor/policy.onnx runs/policies/xor/policy.json policies/xor/

# ~28 min on 2 cores (one thread); see policies/coverage/RECIPE.md.
policy-coverage: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/robot-runtime train --scenario coverage --method diamond --n-agents 4 \
		--seed 0 --num-envs 128 --iterations 300 --lr 1e-3 --no-progress --out runs/policies/coverage
	mkdir -p policies/coverage && cp runs/policies/coverage/policy.onnx runs/policies/coverage/policy.json \
		policies/coverage/

results-xor: setup
	$(PY) -m training.results_xor --out docs/results

bench-train: setup
	$(PY) benchmarks/train_time.py --json docs/results/train_time.json

# Sim-in-the-loop swarm, N = 2..8 lockstep, then N = 8 real-time at 20 Hz for 2 minutes.
bench-swarm: setup
	$(PY) benchmarks/swarm_latency.py --policy policies/coverage/policy.onnx --scenario coverage --robots 2-8 \
		--episodes 10 --realtime-seconds 120 --json docs/results/swarm_latency.json

clean:
	rm -rf $(VENV) build .pytest_cache
