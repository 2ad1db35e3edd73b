"""CLI commands: `flash` and `devices`. Parse, call the flash core, render."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pifleet import flash as core
from pifleet.cli.context import App, pass_app
from pifleet.errors import BadInput
from pifleet.events import Event, Status
from pifleet.ui.live import format_event

if TYPE_CHECKING:
    from rich.progress import TaskID


class _Bar:
    """A rich progress bar (bytes, rate, ETA) per stage; silent under --json or off a terminal."""

    def __init__(self, app: App) -> None:
        console = app.err_console
        self.enabled = not app.json_output and console.is_terminal
        self.progress: Any = None
        if self.enabled:
            # Imported only for a terminal: rich's progress module is a tenth of start-up.
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(TextColumn("{task.description:<8}"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(),
                                     TimeRemainingColumn(), console=console, transient=False)
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if what not in self.tasks:
            if not self.tasks:
                self.progress.start()
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done, total=total)

    def print_event(self, event: Event) -> None:
        """Print a finished step (or a notice) above the bar."""
        if event.status is not Status.START:
            self.progress.console.print(format_event(event), soft_wrap=True, highlight=False)

    def close(self) -> None:
        if self.tasks:
            self.progress.stop()


@click.command("flash")
@click.argument("image")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--hostname", "hostnames", multiple=True,
              help="Hostname of the card (repeat, one per TARGET).")
@click.option("--node", "nodes", multiple=True,
              help="Take hostname, user and key from this fleet node (repeat, one per TARGET).")
@click.option("--user", help="Login user to create (default: pirate, or the fleet's user).")
@click.option("--password", "ask_password", is_flag=True,
              help="Ask for the user's password (never echoed; stored only as a hash).")
@click.option("--ssh-key", "ssh_keys", multiple=True, type=click.Path(path_type=Path),
              help="SSH public key file to authorize (repeatable).")
@click.option("--wifi-ssid", help="Wi-Fi network name.")
@click.option("--wifi-password", help="Wi-Fi passphrase for scripts (visible to other users "
              "in the process list); left out, it is asked on the terminal.")
@click.option("--wifi-country", default="", help="Two-letter Wi-Fi country, e.g. DE.")
@click.option("--static-ip", help="Static eth0 address ADDR/PREFIX for one card, or /PREFIX "
              "with --node: each node's address from the fleet.")
@click.option("--gateway", help="Default gateway for --static-ip.")
@click.option("--dns", multiple=True, help="DNS server for --static-ip (repeatable).")
@click.option("--timezone", help="Time zone, e.g. Europe/Berlin.")
@click.option("--locale", help="Locale, e.g. en_GB.UTF-8.")
@click.option("--keyboard", help="Keyboard layout, e.g. de.")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", "cloud-init", "firstrun", "occidentalis",
                                 "device-init", "none"]),
              help="First-boot format; auto decides from the boot partition's files.")
@click.option("--replace-user-data", is_flag=True,
              help="cloud-init: write pifleet's user-data alone instead of merging it into "
              "the image's own (its users, runcmd, packages).")
@click.option("--sha256", help="SHA-256 of IMAGE as given; checked before writing anything.")
@click.option("--image-sha256", help="SHA-256 of the raw image inside a compressed IMAGE; "
              "checked while writing, before the partition table.")
@click.option("--bmap", type=click.Path(path_type=Path),
              help="Block map (bmap-tools format); default: IMAGE.bmap beside the image.")
@click.option("--no-bmap", is_flag=True, help="Ignore a bmap file beside the image.")
@click.option("--full", is_flag=True,
              help="Write every byte of the image (free space zeroed) instead of only what "
              "its filesystems use.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Read back what was written and compare.")
@click.option("--unmount", is_flag=True, help="Unmount the target's filesystems first.")
@click.option("--allow-non-removable", is_flag=True,
              help="Allow a disk that is not removable (never the system disk).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def flash_command(app: App, image: str, targets: tuple[Path, ...], hostnames: tuple[str, ...],
                  nodes: tuple[str, ...], user: str | None, ask_password: bool,
                  ssh_keys: tuple[Path, ...], wifi_ssid: str | None, wifi_password: str | None,
                  wifi_country: str, static_ip: str | None, gateway: str | None,
                  dns: tuple[str, ...], timezone: str | None, locale: str | None,
                  keyboard: str | None, fmt: str, replace_user_data: bool, sha256: str | None,
                  image_sha256: str | None,
                  bmap: Path | None, no_bmap: bool, full: bool, verify: bool, unmount: bool,
                  allow_non_removable: bool, yes: bool) -> int:
    """Write IMAGE (file, URL or catalog name) and first-boot settings to each TARGET."""
    with _prompt_stopped_is_bad_input():
        common = _common(user, ask_password, ssh_keys, wifi_ssid, wifi_password, wifi_country,
                         static_ip, gateway, dns, timezone, locale, keyboard)
    fleet = app.fleet if nodes else None
    fleet_keys = None
    if fleet is not None:
        from pifleet.remote.keys import public_key_line

        # The key `pifleet trust` installs: the fleet's own (made if missing) or a node's
        # own private key named in the fleet file.
        fleet_keys = {}
        for name in nodes:
            own = fleet.node(name).ssh.private_key
            fleet_keys[name] = public_key_line(fleet, fleet.resolve(own) if own else None)
    boots = core.for_targets(len(targets), common, list(hostnames), list(nodes), fleet,
                             fleet_keys)
    request = core.Request(image=image, targets=list(targets), boots=boots, format=fmt,
                           sha256=sha256, image_sha256=image_sha256, bmap=bmap,
                           use_bmap=not no_bmap, verify=verify, full=full,
                           merge_user_data=not replace_user_data,
                           policy=core.Policy(allow_non_removable, unmount))
    bar = _Bar(app)
    # On a terminal the progress bar is the live display; finished steps print above it
    # (rich allows one live display at a time).
    emitter = app.emitter(live=not bar.enabled)
    if bar.enabled:
        emitter.add(bar.print_event)
    try:
        plan = core.plan(request, emitter, bar)
        if not yes:
            with _prompt_stopped_is_bad_input():
                _confirm(app, plan)
        results = core.execute(plan, emitter, bar)
    finally:
        bar.close()
    if not app.json_output:
        for result in results:
            files = f": {', '.join(result.files)}" if result.files else ""
            checked = (f", {core.human_size(result.verified)} verified" if result.verified
                       else "")
            app.console.print(f"[green]ready[/green] {result.target}: {result.name} "
                              f"({result.format}{files}); "
                              f"{core.human_size(result.written)} written{checked}")
    return 0


def _common(user: str | None, ask_password: bool, ssh_keys: tuple[Path, ...],
            wifi_ssid: str | None, wifi_password: str | None, wifi_country: str,
            static_ip: str | None, gateway: str | None, dns: tuple[str, ...],
            timezone: str | None, locale: str | None, keyboard: str | None) -> core.Common:
    wifi = None
    if wifi_password is not None and not wifi_ssid:
        raise BadInput("--wifi-password goes with --wifi-ssid")
    if wifi_ssid:
        if not wifi_country:
            raise BadInput("Wi-Fi needs --wifi-country too (two letters, e.g. DE)")
        if wifi_password is None:
            wifi_password = _ask_wifi_passphrase(wifi_ssid)
        wifi = core.make_wifi(wifi_ssid, wifi_password, wifi_country)
    network, fleet_addressing = core.static_address(static_ip, gateway, list(dns))
    password_hash = None
    if ask_password:
        password = click.prompt("Password for the card's user", hide_input=True,
                                confirmation_prompt=True, err=True)
        password_hash = core.hash_password(password)
    return core.Common(user=user, password_hash=password_hash, ssh_key_files=list(ssh_keys),
                       wifi=wifi, network=network, fleet_addressing=fleet_addressing,
                       timezone=timezone, locale=locale, keyboard=keyboard)


@contextlib.contextmanager
def _prompt_stopped_is_bad_input() -> Iterator[None]:
    """Ctrl-C or end of input at a prompt: nothing was written yet, so exit 2, not 1."""
    try:
        yield
    except click.exceptions.Abort:
        raise BadInput("stopped at the prompt; nothing was written") from None


def _ask_wifi_passphrase(ssid: str) -> str:
    """Asked with echo off, so it stays out of the process list and the shell history."""
    if not sys.stdin.isatty():
        raise BadInput("--wifi-ssid without --wifi-password: the passphrase is asked only on a "
                       "terminal; scripts give --wifi-password")
    return str(click.prompt(f"Wi-Fi passphrase for {ssid}", hide_input=True, err=True))


def _confirm(app: App, plan: core.Plan) -> None:
    devices = [t for t in plan.targets if t.is_device]
    if not devices:
        return
    console = app.err_console
    console.print("[bold]Everything on these disks will be erased:[/bold]")
    for target in devices:
        console.print(f"  {target.describe()}")
    if not click.confirm("Write the image?", default=False, err=True):
        raise BadInput("not confirmed; nothing was written")


@click.command("devices")
@click.option("--all", "show_all", is_flag=True, help="Also list disks that are not safe "
              "targets, with the reason.")
@pass_app
def devices_command(app: App, show_all: bool) -> int:
    """List removable disks that are safe flash targets."""
    disks = [d for d in core.list_disks() if show_all or d.safe]
    if app.json_output:
        for disk in disks:
            click.echo(json.dumps({"path": disk.path, "size": disk.size, "model": disk.model,
                                   "transport": disk.transport, "removable": disk.removable,
                                   "read_only": disk.read_only, "system": disk.system,
                                   "mountpoints": disk.mountpoints, "safe": disk.safe}))
        return 0
    if not disks:
        app.console.print("No removable disk found. Insert a card (or use --all).")
        return 0
    from rich.table import Table

    table = Table(box=None)
    for column in ("device", "size", "model", "transport", "mounted", "note"):
        table.add_column(column)
    for disk in disks:
        note = ("system disk" if disk.system else "read-only" if disk.read_only
                else "not removable" if not disk.removable else "")
        table.add_row(disk.path, core.human_size(disk.size), disk.model or "-",
                      disk.transport or disk.kind, ", ".join(disk.mountpoints) or "-", note)
    app.console.print(table)
    return 0


COMMANDS: list[click.Command] = [flash_command, devices_command]
