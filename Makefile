# One entry point for setup, tests, the demo and the long jobs.
# Everything lands in .venv (which also becomes the ROS 2 prefix); re-running is a no-op.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps.stamp
ROS_STAMP := $(VENV)/.robot_runtime_ros.stamp
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test lint demo policies policy-coverage policy-spread eval-coverage eval-spread results-xor results-entropy results-control results-transfer results-order bench-train bench-train-coverage bench-train-phases bench-swarm bench-hostile bench-network bench-recorder bench-adapters setup-system clean

setup: $(DEPS_STAMP) $(ROS_STAMP) setup-system

# System tools of the tests (iproute2, nftables for the network-namespace harness; tmux): installed as root where missing.
setup-system:
	bash scripts/setup_system.sh

$(PY):
	$(PYTHON) -m venv $(VENV)

PROJECTS := . robot_runtime_sim robot_runtime_train
# Python deps: exact pins from requirements.txt as constraints; the robot package, the simulator and
# training as editable installs (three distributions: a robot installs only the first), and their
# ROS package files (share/, lib/robot_runtime/) linked into the venv prefix.
$(DEPS_STAMP): $(addsuffix /pyproject.toml,$(PROJECTS)) requirements.txt scripts/install_ament_files.py | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.txt -e ".[dev]" \
		-e ./robot_runtime_sim -e ./robot_runtime_train
	$(PY) scripts/install_ament_files.py $(VENV) . robot_runtime_sim
	touch $@

# ROS 2 Kilted wheels + msgs/ built into the venv (the script keeps its own stamp).
$(ROS_STAMP): $(DEPS_STAMP) requirements-ros.txt scripts/setup_ros.sh $(wildcard msgs/* msgs/msg/*)
	bash scripts/setup_ros.sh $(VENV)

LINTED := robot_runtime robot_runtime_sim robot_runtime_train tests launch benchmarks scripts

test: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check $(LINTED)

# The main job: the bundled policy, sim-in-the-loop: the VMAS world node plus one ROS 2 node
# per robot, separate processes over Fast DDS on this host.
demo: setup
	$(VENV)/bin/robot-runtime swarm --robots 4 --policy policies/coverage/policy.onnx --scenario coverage \
		--episodes 20 --seed 0 --json runs/demo/swarm.json

# Long jobs (not part of the tests).
# Retrain every shipped policy from scratch (fixed seeds); recipes in policies/*/RECIPE.md.
policies: setup
	$(VENV)/bin/robot-runtime train --scenario xor --method diamond --n-agents 2 --seed 0 \
		--iterations 60 --no-progress --out runs/policies/xor
	mkdir -p policies/xor && cp runs/policies/xor/policy.onnx runs/policies/xor/policy.json policies/xor/

# The shipped control-task policies: diamond, N = 4, one thread, fixed seed; see policies/*/RECIPE.md.
# coverage 22-30 min (bit for bit the shipped file), spread (twice the iterations) ~55 min with other work on the second core.
ITERATIONS_coverage := 200
EVAL_EVERY_coverage := 25
ITERATIONS_spread := 400
EVAL_EVERY_spread := 50
policy-coverage policy-spread: policy-%: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/robot-runtime train --scenario $* --method diamond --n-agents 4 --seed 0 \
		--num-envs 64 --iterations $(ITERATIONS_$*) --lr 1e-3 --eval-every $(EVAL_EVERY_$*) --eval-episodes 500 \
		--no-progress --out runs/policies/$*
	mkdir -p policies/$* && cp runs/policies/$*/policy.onnx runs/policies/$*/policy.json policies/$*/

# The shipped spread policy through onnxruntime, N = 2..8.
eval-spread: setup
	$(VENV)/bin/robot-runtime eval --policy policies/spread/policy.onnx --n-agents 2-8 --episodes 500 --seed 7 \
		--json docs/results/spread_eval.json

# The shipped coverage policy through onnxruntime, N = 2..8, and its checkpoint in torch (after
# `make policy-coverage`): the two must agree within 0.02.
eval-coverage: setup
	$(VENV)/bin/robot-runtime eval --policy policies/coverage/policy.onnx --n-agents 2-8 --episodes 500 --seed 7 \
		--json docs/results/coverage_eval.json
	$(VENV)/bin/robot-runtime eval --policy runs/policies/coverage/checkpoint.pt --n-agents 2-8 --episodes 500 \
		--seed 7 --json docs/results/coverage_eval_torch.json
	$(PY) benchmarks/compare_eval.py docs/results/coverage_eval.json docs/results/coverage_eval_torch.json \
		--json docs/results/coverage_onnx_vs_torch.json

results-xor: setup
	$(PY) -m robot_runtime_train.results.xor --out docs/results

# MAPPO's entropy bonus on XOR (N = 2, 3) for no_mask, mlp and diamond, 3 seeds each -> docs/results/entropy.md.
results-entropy: setup
	$(PY) -m robot_runtime_train.results.entropy --out docs/results

results-control: setup
	$(PY) -m robot_runtime_train.results.control --out docs/results

# Policies trained with N = 4 on one scenario, zero-shot on the others (coverage, spread, their 2N-goal variants),
# N = 2..8 -> docs/results/transfer.md; trains the coverage baselines it needs when results-control has not.
results-transfer: setup
	$(PY) -m robot_runtime_train.results.transfer --out docs/results

# Where a consistent order matters: diamond and dropout trained with N = 4 on coverage_no_contact (a contact
# between robots fails the episode), 3 seeds, evaluated N = 2..8 -> docs/results/order.md.
results-order: setup
	$(PY) -m robot_runtime_train.results.order --out docs/results

bench-train: setup
	$(PY) benchmarks/train_time.py --json docs/results/train_time.json

# The shipped coverage recipe (one thread, as `make policy-coverage`) until N=4 greedy success >= 0.9, 3 runs.
bench-train-coverage: setup
	OMP_NUM_THREADS=1 $(PY) benchmarks/train_time.py --scenario coverage --n-agents 4 --target 0.9 --seeds 1 --repeats 3 \
		--train-args "--num-envs 64 --lr 1e-3 --eval-every 25 --eval-episodes 500 --iterations 200" \
		--json docs/results/train_time_coverage.json

# Where a training iteration's time goes (rollout, update, evaluation): the coverage recipe and 32 envs, 1 and 2
# threads, 7 iterations each (~4 min on a quiet machine).
bench-train-phases: setup
	$(PY) benchmarks/train_phases.py --json docs/results/train_phases.json

# How a robot node waits (CPU per received broadcast: the wait set, EventsExecutor, the executors), then the
# sim-in-the-loop swarm, N = 2..8 lockstep, then N = 8 real-time at 20 Hz, 3 runs of at least 2 minutes each.
bench-swarm: setup
	$(PY) benchmarks/spinner_cpu.py --json docs/results/spinner_cpu.json
	$(PY) benchmarks/swarm_latency.py --policy policies/coverage/policy.onnx --scenario coverage --robots 2-8 \
		--episodes 30 --episodes-trained-n 100 --realtime-seconds 120 --realtime-runs 3 --realtime-priorities 0,10 \
		--json docs/results/swarm_latency.json

# The swarm over a lossy multi-host network (network namespaces, needs root; ~40 min): loss 0-30%, bursts,
# partitions, lockstep and clock offsets, before and after the loss-tolerant protocol.
bench-network: setup
	$(PY) benchmarks/network.py --json docs/results/network.json --markdown docs/results/network.md \
		--png docs/results/network.png --logs runs/network

# The flight recorder: its cost per decision (N = 4, 8), N = 8 real time 20 Hz with it on and off (2 runs
# of 60 s each), the last recorded run replayed bit for bit and plotted (~8 min).
bench-recorder: setup
	$(PY) benchmarks/recorder.py --json docs/results/recorder.json --markdown docs/results/recorder.md \
		--png docs/results/flight_n8.png

# Hostile input and the safety layer: what signing costs per step, e-stop latency at N = 8, 20 Hz, and a
# 4-robot team under every category of robot_runtime_sim.rogue against a clean run with the same seed, and
# the N = 8 swarm unsigned (against bench-swarm's signed figures).
bench-hostile: setup
	$(PY) benchmarks/signing_cost.py --json docs/results/signing_cost.json
	$(PY) benchmarks/estop_latency.py --json docs/results/estop_latency.json
	$(PY) benchmarks/hostile.py --json docs/results/hostile.json --markdown docs/results/hostile.md
	$(PY) benchmarks/swarm_latency.py --policy policies/coverage/policy.onnx --scenario coverage --robots 8 \
		--unsigned --episodes 30 --realtime-seconds 120 --realtime-priorities 0,10 \
		--json docs/results/swarm_latency_unsigned.json

# The adapters in the loop (robot_runtime.ros.adapter): coverage N = 4, 100 episodes each through the direct
# Observation/Action path, Odometry/Twist to holonomic bodies and to differential-drive bodies (~8 min).
bench-adapters: setup
	$(PY) benchmarks/adapters.py --json docs/results/adapters.json --markdown docs/results/adapters.md

clean:
	rm -rf $(VENV) build .pytest_cache
