"""`detectctl demo`: synthetic data, a local training job, a local endpoint, mAP and a picture."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from detectctl.cli import options, output

SAGEMAKER_BUCKET = "s3://YOUR-BUCKET/detectctl-demo"


def demo(
    output_dir: Annotated[Path, typer.Option(
        "--output", help="Where the data, predictions and picture go.", metavar="DIR")] = Path(
        "demo"),
    quick: Annotated[bool, typer.Option(
        "--quick", help="A smaller run (under 2 minutes on 2 cores); its mAP is lower.")] = False,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Leave the endpoint running at the end.")] = False,
    verbose: options.Verbose = False,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Train and serve a detector on this machine, end to end, in a few minutes.

    Makes a synthetic training set and a held-out set, validates them, trains on the local
    backend (live display), deploys a local endpoint, sends it every held-out image, scores the
    answers with the training job's evaluator (VOC07 mAP), draws a picture of what it found,
    and says how to run the same on SageMaker. Nothing is downloaded. Ctrl-C, or any failure,
    stops the job and removes the endpoint.
    """
    from detectctl.demo import Demo

    run = Demo(output_dir, quick=quick, keep=keep)
    say = (lambda text: None) if json else (lambda text: sys.stderr.write(text + "\n"))
    try:
        _steps(run, say, verbose=verbose, json=json)
    except BaseException:
        for line in run.abort():
            say(line)
        raise
    result = run.finish()
    if json:
        output.print_json(result.to_dict())
        return
    _summary(result)


def _steps(run: Any, say: Any, *, verbose: bool, json: bool) -> None:
    from detectctl.cli.follow import follow

    r = run.recipe
    say(f"1/6 data: {r.images} synthetic images ({int(r.validation_fraction * 100)}% held out) "
        f"in {run.output}")
    run.make_data()
    say("2/6 validating both sets")
    run.check_data()
    say(f"3/6 training {run.result.job} on this machine "
        f"({r.hyperparameters['base_network']}, {r.hyperparameters['epochs']} epochs)")
    job = run.train()
    if not json:
        follow(job, verbose=verbose, summary=False)
    else:
        job.wait()
    say("4/6 deploying it to a local endpoint")
    endpoint = run.deploy()
    say(f"5/6 sending the held-out images to {endpoint.url}")
    run.score()
    say("6/6 drawing what it found")
    run.picture()


def _summary(result: Any) -> None:
    from detectctl.demo import GPU_PRESET

    lines = ["", f"held-out VOC07 mAP {result.held_out_map:.3f} through the endpoint"
                 + (f" (the job reported {result.validation_map:.3f})"
                    if result.validation_map is not None else "")
                 + (" -- a --quick run: train longer for more" if result.quick else ""),
             f"finished in {result.seconds / 60:.1f} minutes", "", "files:"]
    lines += [f"  {name:<13} {path}" for name, path in result.files.items()]
    if result.endpoint:
        lines += ["", f"endpoint {result.endpoint} is still running: detectctl predict "
                      f"{result.endpoint} --local IMAGE; detectctl endpoints delete "
                      f"{result.endpoint} --local"]
    lines += ["", "the same on SageMaker:",
              f"  detectctl dataset upload {result.output} {SAGEMAKER_BUCKET}",
              f"  detectctl train --preset {GPU_PRESET} --hp num_classes=3 --train "
              f"{SAGEMAKER_BUCKET}/train/ --validation {SAGEMAKER_BUCKET}/validation/",
              "  detectctl deploy JOB --instance ml.c5.xlarge"]
    sys.stdout.write("\n".join(lines) + "\n")
