"""Deploy a training job to RunPod and follow it.

    RUNPOD_API_KEY=... python examples/deploy_to_runpod.py DATASET_ID \
        --base-model Qwen/Qwen2.5-0.5B-Instruct --gpu A40 --gpu L40S --max-cost 5 [--wait]

Runs server-side (``SUPABASE_SERVICE_ROLE_KEY``) or as a signed-in user. The pod receives only its job id, a
job token, the project URL and the anon key; never the service-role key. GPUs after the first are failover
offers used when RunPod has no capacity for the first. The pod terminates itself when training ends; run
``lora-pipeline runpod reap`` from a cron job to clean up pods whose job ended or went silent anyway.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from rich.console import Console

from lora_pipeline import CapacityError, LoraPipeline
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="deploy a LoRA training job to RunPod")
    parser.add_argument("dataset_id")
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--gpu", action="append", default=None, help="GPU types in order of preference")
    parser.add_argument("--preset", default="balanced", choices=["conservative", "balanced", "aggressive"])
    parser.add_argument("--max-cost", type=float, default=None, help="stop the job at this many USD")
    parser.add_argument("--max-hours", type=float, default=6.0)
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
    args = parser.parse_args(argv)
    console = Console()
    gpus = args.gpu or ["A40"]

    lp = LoraPipeline.from_env()
    key = lp.settings.runpod_api_key  # RUNPOD_API_KEY
    backend = RunPodBackend(key or "", [RunPodOffer(gpu_type=gpu) for gpu in gpus])
    estimate = lp.jobs.estimate(args.dataset_id, base_model=args.base_model, preset=args.preset, gpu_type=gpus[0])
    console.print(f"estimate: {estimate}")

    job = lp.jobs.create(
        args.dataset_id,
        base_model=args.base_model,
        preset=args.preset,
        gpu_type=gpus[0],
        max_runtime=timedelta(hours=args.max_hours),
        max_cost_usd=args.max_cost,
    )
    try:
        job = lp.jobs.deploy(job.id, backend=backend)
    except CapacityError as error:  # every offer was full: the job is failed/no_capacity
        console.print(f"[red]no capacity:[/red] {error}")
        return 1
    console.print(f"job {job.id}: {job.status} on {job.gpu_type} at ${job.cost_per_hour}/h (pod {job.pod_id})")
    if args.wait:
        job = lp.jobs.wait_for_completion(job.id, backend=backend)
        console.print(job)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
