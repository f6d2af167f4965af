#!/usr/bin/env bash
# lora-pipeline pod bootstrap: the first thing a RunPod container runs (lora_pipeline/pod/launch.py sends it).
#
# Everything it needs comes from the pod's environment (names in lora_pipeline/pod/launch.py):
#   1. a restarted container of an ended job terminates its pod at once;
#   2. RunPod secret references must have been resolved;
#   3. the exact lora-pipeline wheel is downloaded with the job token and its SHA-256 checked before pip sees it
#      (or an explicitly named, published requirement is used);
#   4. pip installs it with the image's own torch pinned, never resolving lora-pipeline by name from an index;
#   5. the pod program runs under a hard timeout.
# Any failure is reported once through rpc/pod_report_bootstrap_failure (failed / container_error, with the last
# lines of output) and the pod terminates itself, so RunPod does not restart a failing container and bill for it.
set -uo pipefail

WORK="${LORA_WORK_DIR:-${TMPDIR:-/tmp}}/lora-pipeline/bootstrap"
LOG="$WORK/output.log"
ENDED="${WORK%/bootstrap}/pod-ended"  # launch.POD_ENDED_FILE: the pod program already had RunPod end the pod
mkdir -p "$WORK" || exit 1
rm -f "$ENDED"
: >"$LOG"
STEP="starting"
PY=""

say() { printf 'lora-pipeline bootstrap: %s\n' "$*" | tee -a "$LOG"; }

json_string() {
  # A JSON string literal for $1 in pure bash (python may be what failed); only printable ASCII survives.
  local text
  text=$(printf '%s' "$1" | LC_ALL=C tr -cd '\11\12\15\40-\176')
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  text=${text//$'\t'/\\t}
  printf '"%s"' "$text"
}

supabase_post() {
  # POST a JSON body to a PostgREST rpc with the anon key; prints the HTTP status, the reply goes to $WORK/reply.
  curl --silent --show-error --max-time 30 --retry 3 --retry-connrefused --output "$WORK/reply" \
    --write-out '%{http_code}' -X POST "${SUPABASE_URL%/}/rest/v1/rpc/$1" \
    -H "apikey: ${SUPABASE_ANON_KEY}" -H "Authorization: Bearer ${SUPABASE_ANON_KEY}" \
    -H "Content-Type: application/json" --data-binary "$2" 2>>"$LOG" || printf '000'
}

job_fields() {
  printf '"job_id": %s, "job_token": %s' "$(json_string "${LORA_JOB_ID:-}")" "$(json_string "${LORA_JOB_TOKEN:-}")"
}

terminate_pod() {
  # RunPod restarts a container whose command exits and keeps billing: end the pod itself, with the pod's own
  # key: REST v2 first (GraphQL is being retired), then GraphQL, then runpodctl.
  [[ -n "${RUNPOD_POD_ID:-}" ]] || return 0
  local pod="${RUNPOD_POD_ID//[^A-Za-z0-9]/}" base="${RUNPOD_API_BASE_URL:-https://api.runpod.io}" status
  if [[ -n "${RUNPOD_API_KEY:-}" ]]; then
    status=$(curl --silent --show-error --max-time 30 --retry 3 --output /dev/null --write-out '%{http_code}' \
      -X DELETE "${base%/}/v2/pods/$pod" -H "Authorization: Bearer ${RUNPOD_API_KEY}" 2>>"$LOG") || status=000
    [[ "$status" == 2* || "$status" == 404 ]] && return 0
    local query="mutation { podTerminate(input: {podId: \\\"$pod\\\"}) }"
    status=$(curl --silent --show-error --max-time 30 --retry 3 --output /dev/null --write-out '%{http_code}' \
      -X POST "${RUNPOD_API_BASE_URL:-https://api.runpod.io}/graphql" \
      -H "Authorization: Bearer ${RUNPOD_API_KEY}" -H "Content-Type: application/json" \
      --data-binary "{\"query\": \"$query\"}" 2>>"$LOG") || status=000
    [[ "$status" == 200 ]] && return 0
  fi
  if command -v runpodctl >/dev/null 2>&1; then
    runpodctl remove pod "$pod" >>"$LOG" 2>&1 && return 0
  fi
  say "could not terminate pod $pod; RunPod's terminateAfter deadline will"
  return 1
}

finish() {
  # End here: terminate the pod (unless the pod program just did); if that did not take, wait before exiting
  # so restarts do not spin.
  if [[ -f "$ENDED" ]]; then
    say "the pod program ended pod ${RUNPOD_POD_ID:-}"
  else
    terminate_pod || true
  fi
  sleep "${LORA_BOOTSTRAP_EXIT_PAUSE:-60}"
  exit "$1"
}

fail() {
  local message="$1 (while ${STEP})"
  say "FAILED: $message"
  if [[ -n "${SUPABASE_URL:-}" && -n "${SUPABASE_ANON_KEY:-}" ]]; then
    local body status
    body="{$(job_fields), \"step\": $(json_string "$STEP"), \"message\": $(json_string "$message"),"
    body+=" \"output_tail\": $(json_string "$(tail -n "${LORA_BOOTSTRAP_TAIL_LINES:-40}" "$LOG")")}"
    status=$(supabase_post pod_report_bootstrap_failure "$body")
    [[ "$status" == 200 ]] || say "could not report the failure (HTTP $status)"
  fi
  finish 1
}

run() {
  # Run a step's command with its output in the container log and in $LOG; its exit status is returned.
  "$@" 2>&1 | tee -a "$LOG"
}

STEP="checking the image"
for tool in curl sha256sum tail; do
  command -v "$tool" >/dev/null 2>&1 || fail "the image has no $tool; use a RunPod PyTorch image"
done
PY=$(command -v python || command -v python3) || fail "the image has no python; use a RunPod PyTorch image"
run "$PY" -m pip --version >/dev/null || fail "the image's python has no pip"

STEP="asking for the job"
status=$(supabase_post pod_get_job "{$(job_fields)}")
case "$status" in
  200) ;;
  401 | 403) say "the job token is no longer valid (HTTP $status): the job ended; terminating this pod"; finish 0 ;;
  *) fail "Supabase answered HTTP $status to pod_get_job: $(head -c 300 "$WORK/reply")" ;;
esac
job_status=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status", ""))' "$WORK/reply")
case "$job_status" in
  succeeded | failed | cancelled) say "job ${LORA_JOB_ID} already ended ($job_status); terminating this pod"; finish 0 ;;
esac

STEP="checking secrets"
for name in ${LORA_SECRET_ENV:-}; do
  value="${!name:-}"
  if [[ -z "$value" || "$value" == *"{{"*RUNPOD_SECRET_* ]]; then
    fail "secret $name was not resolved: create the RunPod secret it names (Settings > Secrets) and deploy again"
  fi
done

STEP="downloading lora-pipeline"
if [[ -n "${LORA_WHEEL_OBJECT:-}" ]]; then
  wheel="$WORK/${LORA_WHEEL_OBJECT##*/}"
  status=$(curl --silent --show-error --max-time 300 --retry 3 --retry-connrefused --output "$wheel" \
    --write-out '%{http_code}' "${SUPABASE_URL%/}/storage/v1/object/${LORA_WHEEL_BUCKET:-lora-models}/${LORA_WHEEL_OBJECT}" \
    -H "apikey: ${SUPABASE_ANON_KEY}" -H "Authorization: Bearer ${SUPABASE_ANON_KEY}" \
    -H "x-lora-job-id: ${LORA_JOB_ID}" -H "x-lora-job-token: ${LORA_JOB_TOKEN}" 2>>"$LOG") || status=000
  [[ "$status" == 200 ]] || fail "could not download the wheel ${LORA_WHEEL_OBJECT##*/} (HTTP $status)"
  STEP="checking the wheel"
  actual=$(sha256sum "$wheel" | cut -d' ' -f1)
  if [[ "$actual" != "${LORA_WHEEL_SHA256:-}" ]]; then
    rm -f "$wheel"
    fail "the wheel's SHA-256 is $actual, not the ${LORA_WHEEL_SHA256:-(none)} sent by the launcher: not installing it"
  fi
  requirement="${wheel}[train]"
elif [[ -n "${LORA_REQUIREMENT:-}" ]]; then
  requirement="$LORA_REQUIREMENT"
else
  fail "no package to install: the launcher sent neither LORA_WHEEL_OBJECT nor LORA_REQUIREMENT"
fi

STEP="checking the image's torch"
torch_version=$(run "$PY" - <<'PYTHON'
import sys
try:
    import torch
except Exception as error:
    sys.exit(f"the image has no working PyTorch ({error}); use a RunPod PyTorch image with torch >= 2.5")
release = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
if release < (2, 5):
    sys.exit(f"the image's torch {torch.__version__} is older than 2.5, which transformers 5 needs")
print(torch.__version__)
PYTHON
) || fail "$(tail -n 1 "$LOG")"
torch_version=$(printf '%s\n' "$torch_version" | tail -n 1)
printf 'torch==%s\n' "$torch_version" >"$WORK/constraints.txt"

STEP="installing lora-pipeline"
say "installing $requirement with torch==$torch_version pinned"
run "$PY" -m pip install --no-input --disable-pip-version-check --progress-bar off \
  --constraint "$WORK/constraints.txt" "$requirement" || fail "pip could not install $requirement"

STEP="importing lora-pipeline"
run "$PY" -c "import lora_pipeline.pod.runtime as r, lora_pipeline as p; print('lora-pipeline', p.__version__, 'from', p.__file__)" \
  || fail "the installed lora-pipeline does not import"

STEP="running the pod program"
# In the background with SIGTERM passed on, so that a stop or terminate reaches the pod program (which
# reports and finishes its metrics) instead of only this shell, the container's first process.
timeout --kill-after=60 "${LORA_MAX_RUNTIME_SECONDS:-86400}" "$PY" -m lora_pipeline.pod run > >(tee -a "$LOG") 2>&1 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
code=0
wait "$child" || code=$?
while kill -0 "$child" 2>/dev/null; do  # woken by the trap: wait for the program's own exit status
  code=0
  wait "$child" || code=$?
done
trap - TERM INT
case "$code" in
  0) say "pod program finished"; finish 0 ;;
  124) fail "the pod program ran past its max runtime (${LORA_MAX_RUNTIME_SECONDS:-86400} s)" ;;
  *) fail "the pod program exited with status $code" ;;
esac
