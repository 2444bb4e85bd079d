"""``lutfarm demo``: the main job on the embedded default, end to end."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from lutfarm.api import LUTSettings, ProfileSettings, build_lut
from lutfarm.cli import cli
from lutfarm.cli.options import db_option, layout_options, runtime_options
from lutfarm.cli.output import lut_table, out
from lutfarm.cli.profile import run_profile
from lutfarm.profiler.devices.record import LOCAL
from lutfarm.spaces.registry import family_of


@cli.command()
@layout_options
@runtime_options
@db_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("lut_local.csv"), show_default=True, help="where to write the LUT")
def demo(layout, runtime_config, db, output):
    """Profile this machine, export its LUT and price a few example architectures."""
    if family_of(layout.space) != "chain":
        raise click.UsageError(f"the demo builds an FBNet LUT; measure the {layout.space} "
                               f"space with: lutfarm profile --space {layout.space}")
    run_profile(ProfileSettings(layout, [LOCAL], runtime_config, db))
    table = build_lut(LUTSettings("local", runtime_config.key, db, layout.space, layout.name,
                                  layout.classes, output=output)).lut
    rng = np.random.default_rng(0)
    examples = {"all k3_e1": [0] * layout.num_layers, "all k5_e6": [7] * layout.num_layers}
    examples.update({f"random #{i + 1}": rng.integers(0, 9, layout.num_layers).tolist()
                     for i in range(3)})
    out.print(lut_table(table, examples))
    out.print(f"LUT written to [bold]{output}[/]; query it with: lutfarm lut query --lut {output} "
              f"--arch {','.join(map(str, examples['random #1']))}")
