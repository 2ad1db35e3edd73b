"""Raspberry Pi OS Bookworm: `firstrun.sh` run once by systemd from the kernel command line.

The script does its work, then removes itself and its cmdline.txt addition (facts.md
section 5), so the second boot is an ordinary one. Where the card has Raspberry Pi OS's own
first-boot helper (`imager_custom` from raspberrypi-sys-mods), hostname, SSH, Wi-Fi, keyboard
and time zone go through it, as Raspberry Pi Imager's firstrun.sh does (facts.md section 9);
elsewhere pifleet's own steps do the same. The script passes `shellcheck`.
"""

from __future__ import annotations

from shlex import quote

from pifleet.flash.bootconfig.settings import FirstBoot

# facts.md section 5: the exact addition, appended to the one line of cmdline.txt.
CMDLINE_ADDITION = ("systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot "
                    "systemd.unit=kernel-command-line.target")
IMAGER_CUSTOM = "/usr/lib/raspberrypi-sys-mods/imager_custom"

_HEAD = f"""#!/bin/bash
# First-boot configuration written by pifleet flash. Runs once, then removes itself.
set +e
BOOT=/boot/firmware
[ -f "$BOOT/cmdline.txt" ] || BOOT=/boot
IMAGER_CUSTOM={IMAGER_CUSTOM}
"""

_HOSTNAME = """
NEW_HOSTNAME={host}
if [ -x "$IMAGER_CUSTOM" ]; then
  "$IMAGER_CUSTOM" set_hostname "$NEW_HOSTNAME"
else
  echo "$NEW_HOSTNAME" >/etc/hostname
  if grep -q '^127\\.0\\.1\\.1' /etc/hosts; then
    sed -i "s/^127\\.0\\.1\\.1.*/127.0.1.1\\t$NEW_HOSTNAME/" /etc/hosts
  else
    printf '127.0.1.1\\t%s\\n' "$NEW_HOSTNAME" >>/etc/hosts
  fi
  hostname "$NEW_HOSTNAME"
fi
"""

_USER = """
NEW_USER={user}
# shellcheck disable=SC2016  # a crypt(3) hash: its $ signs are not expansions
PASSWORD_HASH={hash}
FIRST_USER=$(getent passwd 1000 | cut -d: -f1)
if [ -x /usr/lib/userconf-pi/userconf ]; then
  # Also without a password: userconf renames the first user, sets a password only when
  # given one, and switches off the first-boot user wizard, which would otherwise wait for
  # a keyboard on a headless Pi.
  /usr/lib/userconf-pi/userconf "$NEW_USER" "$PASSWORD_HASH"
fi
if ! id "$NEW_USER" >/dev/null 2>&1; then
  if [ -n "$FIRST_USER" ] && [ "$FIRST_USER" != "$NEW_USER" ]; then
    usermod -l "$NEW_USER" "$FIRST_USER"
    usermod -m -d "/home/$NEW_USER" "$NEW_USER"
    groupmod -n "$NEW_USER" "$FIRST_USER"
  else
    useradd -m -s /bin/bash -G sudo,adm,users "$NEW_USER"
  fi
fi
if [ -n "$PASSWORD_HASH" ]; then
  echo "$NEW_USER:$PASSWORD_HASH" | chpasswd -e
else
  usermod -p '!' "$NEW_USER"  # no password: SSH keys only
fi
echo "$NEW_USER ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/010_pifleet-nopasswd
chmod 0440 /etc/sudoers.d/010_pifleet-nopasswd
"""

# imager_custom adds keys for the first user (uid 1000, pifleet's user after the step above)
# and sets PasswordAuthentication in sshd_config: -k off, -p on.
_SSH = """
SSH_KEYS=({keys})
if [ -x "$IMAGER_CUSTOM" ]; then
  "$IMAGER_CUSTOM" enable_ssh {mode} "${{SSH_KEYS[@]}}"
else
  {own_login}
  systemctl enable ssh 2>/dev/null || systemctl enable sshd
fi
# The keys also for a user that is not uid 1000; none twice.
HOME_DIR=$(getent passwd "$NEW_USER" | cut -d: -f6)
install -d -m 700 -o "$NEW_USER" -g "$NEW_USER" "$HOME_DIR/.ssh"
AUTHORIZED="$HOME_DIR/.ssh/authorized_keys"
touch "$AUTHORIZED"
for KEY in "${{SSH_KEYS[@]}}"; do
  grep -qxF "$KEY" "$AUTHORIZED" || echo "$KEY" >>"$AUTHORIZED"
done
chown "$NEW_USER:$NEW_USER" "$AUTHORIZED"
chmod 600 "$AUTHORIZED"
"""

# Key-only without imager_custom: sshd takes the first value it reads for a setting, so the
# line goes into a drop-in read before sshd_config's own lines, or at the top of sshd_config.
_KEY_ONLY = """if grep -qs '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config; then
    mkdir -p /etc/ssh/sshd_config.d
    echo 'PasswordAuthentication no' >/etc/ssh/sshd_config.d/01-pifleet.conf
  else
    sed -i '1i PasswordAuthentication no' /etc/ssh/sshd_config
  fi"""

_WIFI = """
WIFI_SSID={ssid}
WIFI_PSK={psk}
WIFI_COUNTRY={country}
rfkill unblock wifi 2>/dev/null
if [ -x "$IMAGER_CUSTOM" ]; then
  "$IMAGER_CUSTOM" set_wlan "$WIFI_SSID" "$WIFI_PSK" "$WIFI_COUNTRY"
else
  command -v raspi-config >/dev/null && raspi-config nonint do_wifi_country "$WIFI_COUNTRY"
  mkdir -p /etc/NetworkManager/system-connections
  umask 077
  cat >/etc/NetworkManager/system-connections/pifleet-wifi.nmconnection <<PIFLEET_WIFI
[connection]
id=pifleet-wifi
type=wifi
interface-name=wlan0
autoconnect=true

[wifi]
mode=infrastructure
ssid=$WIFI_SSID

[wifi-security]
key-mgmt=wpa-psk
psk=$WIFI_PSK

[ipv4]
method=auto

[ipv6]
method=auto
PIFLEET_WIFI
  umask 022
fi
"""

_STATIC = """
umask 077
mkdir -p /etc/NetworkManager/system-connections
cat >/etc/NetworkManager/system-connections/pifleet-eth0.nmconnection <<'PIFLEET_ETH'
[connection]
id=pifleet-eth0
type=ethernet
interface-name=eth0
autoconnect=true

[ipv4]
method=manual
address1={address}{gateway}
{dns}
[ipv6]
method=auto
PIFLEET_ETH
umask 022
"""

# Timezone, locale and keyboard passed settings.check_setting when the FirstBoot was made:
# they hold no quote, space, `&` or backslash; only a time zone holds `/`, and never in sed.
_TIMEZONE = """
if [ -x "$IMAGER_CUSTOM" ]; then
  "$IMAGER_CUSTOM" set_timezone {tz}
elif [ -f /usr/share/zoneinfo/{tz} ]; then
  ln -sf /usr/share/zoneinfo/{tz} /etc/localtime
  echo {tz} >/etc/timezone
fi
"""

_LOCALE = """
sed -i 's/^# *\\({locale_pattern}\\)/\\1/' /etc/locale.gen 2>/dev/null
command -v locale-gen >/dev/null && locale-gen
update-locale LANG={locale} 2>/dev/null
"""

_KEYBOARD = """
if [ -x "$IMAGER_CUSTOM" ]; then
  "$IMAGER_CUSTOM" set_keymap {layout}
else
  sed -i 's/^XKBLAYOUT=.*/XKBLAYOUT="{layout}"/' /etc/default/keyboard 2>/dev/null
fi
"""

_TAIL = """
rm -f "$BOOT/firstrun.sh"
sed -i 's| systemd.run=[^ ]*firstrun.sh.*||' "$BOOT/cmdline.txt"
exit 0
"""


def script(boot: FirstBoot) -> str:
    """The whole `firstrun.sh`. Values are shell-quoted, except inside the single-quoted sed
    commands, where only names that passed `check_setting` go; the password only as a hash.

    A card without a password takes SSH keys only: password logins over SSH are turned off.
    """
    key_only = boot.password_hash is None
    parts = [_HEAD, _HOSTNAME.format(host=quote(boot.hostname)),
             _USER.format(user=quote(boot.user), hash=quote(boot.password_hash or "")),
             _SSH.format(keys=" ".join(quote(k) for k in boot.ssh_keys),
                         mode="-k" if key_only else "-p",
                         own_login=_KEY_ONLY if key_only else ":  # password logins stay on")]
    if boot.wifi:
        parts.append(_WIFI.format(ssid=quote(boot.wifi.ssid), psk=quote(boot.wifi.psk),
                                  country=quote(boot.wifi.country)))
    if boot.network:
        gateway = f",{boot.network.gateway}" if boot.network.gateway else ""
        dns = ("dns=" + ";".join(str(d) for d in boot.network.dns) + ";\n"
               if boot.network.dns else "")
        parts.append(_STATIC.format(address=boot.network.address, gateway=gateway, dns=dns))
    if boot.timezone:
        parts.append(_TIMEZONE.format(tz=quote(boot.timezone)))
    if boot.locale:
        # In the sed pattern a `.` would match any character: match the dot itself.
        parts.append(_LOCALE.format(locale=quote(boot.locale),
                                    locale_pattern=boot.locale.replace(".", "\\.")))
    if boot.keyboard:
        parts.append(_KEYBOARD.format(layout=boot.keyboard))
    parts.append(_TAIL)
    return "".join(parts)
