# One command to run, one to test. Each sets up .venv, the packages and MNIST if missing.
PY      := .venv/bin/python
STAMP   := .venv/.installed
HOST    ?= 127.0.0.1
PORT    ?= 8501

.PHONY: run host-warning test bench setup data browser lint clean

run: host-warning setup data
	$(PY) -m streamlit run dashboard/app.py --server.address $(HOST) --server.port $(PORT)

# The lab has no login: any address but loopback lets everyone who can reach it train, delete models and read
# the saved digits. Said before serving; to share it, keep 127.0.0.1 and use an SSH tunnel or an
# authenticating proxy (README, "Serving it to others").
host-warning:
	@case "$(HOST)" in 127.*|localhost|::1) ;; \
	*) echo "WARNING: serving on $(HOST): the lab has no login, so anyone who can reach this address and port can" \
	   "train, delete models and read your digits. Prefer HOST=127.0.0.1 with an SSH tunnel" \
	   "(ssh -L $(PORT):127.0.0.1:$(PORT) this-host) or an authenticating proxy; see README 'Serving it to others'." >&2 ;; \
	esac

test: setup data browser
	$(PY) -m pytest -q tests

bench: setup data
	$(PY) benchmarks/run_all.py

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-export.txt Makefile
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	@# A .venv from before the switch to tensorflow-cpu: both distributions own the same files, so the CUDA
	@# build goes first, with its twin, and tensorflow-cpu is installed afresh below.
	if $(PY) -m pip show -q tensorflow 2>/dev/null; then $(PY) -m pip uninstall -q -y tensorflow tensorflow-cpu; fi
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-export.txt
	$(PY) -m pip install -q --no-deps "tf-keras>=2.21,<2.22"
	touch $(STAMP)

data: setup
	@$(PY) -m mnist_core download

# Debian's Chromium for the browser tests. Never `playwright install`: it downloads a browser.
# Without root the tests skip with a hint, except under CI=1 where they must run.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium; browser tests will skip (or fail under CI)"; \
	else echo "chromium missing: run 'sudo apt-get install chromium' to enable the browser tests"; fi

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf .venv data jobs
