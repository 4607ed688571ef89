"""docs/security.md against the agent: every configuration key its tables
list has the default and the range `guestd --dump-config` prints, a size or
time given beside a default is that default, and every [commands] key (the
policy) and the channel's bounds are on the page."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import GUESTD  # noqa: E402

DOC = os.path.join(os.path.dirname(__file__), "../../docs/security.md")

# "; Longest message accepted from the host (default: 1048576; allowed: 1024..67108864; restart)"
KEY_COMMENT = re.compile(r"^; .* \(default: (.*); allowed: (.*); (?:runtime|restart)\)$")
# "| `channel.max_message_bytes` | `1048576` (1 MiB) | `1024..67108864` | ..."
DOC_ROW = re.compile(r"^\| `([a-z_]+\.[a-z_]+)` \| `([^`]*)`( \([^)]*\))? \| `([^`]*)` \|", re.M)

UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
         "ms": 1, "s": 1000, "min": 60000, "h": 3600000}

# Keys a reader of the page must find there whatever else changes.
REQUIRED = {"channel.max_message_bytes", "channel.out_queue_bytes"}


def dumped_keys():
    """{"section.key": (default, allowed)} from --dump-config's comments."""
    r = subprocess.run([GUESTD, "-c", "/dev/null", "--dump-config"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    keys, section, described = {}, None, None
    for line in r.stdout.splitlines():
        m = re.match(r"\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = KEY_COMMENT.match(line)
        if m:
            described = (m.group(1), m.group(2))
            continue
        m = re.match(r"(\w+) =", line)
        if m and described:
            keys["%s.%s" % (section, m.group(1))] = described
            described = None
    return keys


def documented_rows():
    with open(DOC) as f:
        return DOC_ROW.findall(f.read())


def unit_value(text):
    """"(1 MiB)" -> 1048576, "(30 s)" -> 30000; None for other remarks."""
    m = re.fullmatch(r" \((\d+) (\w+)\)", text)
    if not m or m.group(2) not in UNITS:
        return None
    return int(m.group(1)) * UNITS[m.group(2)]


class SecurityDocTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = dumped_keys()
        cls.rows = documented_rows()

    def test_defaults_and_ranges_are_the_agents(self):
        self.assertGreater(len(self.keys), 20)
        self.assertGreater(len(self.rows), 20)
        for key, default, remark, allowed in self.rows:
            with self.subTest(key=key):
                self.assertIn(key, self.keys, "docs/security.md lists a key guestd does not have")
                self.assertEqual((default, allowed), self.keys[key])

    def test_sizes_and_times_beside_defaults_are_exact(self):
        checked = 0
        for key, default, remark, _ in self.rows:
            value = unit_value(remark)
            if remark and value is None:
                self.fail("%s: cannot read %r as a size or a time" % (key, remark))
            if value is not None:
                unit = re.search(r"\w+\)$", remark).group(0)[:-1]
                if unit in ("ms", "s", "min", "h"):
                    self.assertTrue(key.endswith("_ms"), "%s: a time beside a non-time" % key)
                self.assertEqual(int(default), value, "%s: %s is not %s" % (key, remark, default))
                checked += 1
        self.assertGreater(checked, 5)

    def test_policy_and_channel_bounds_are_all_there(self):
        listed = {row[0] for row in self.rows}
        policy = {k for k in self.keys if k.startswith("commands.")}
        self.assertTrue(policy)
        self.assertEqual((policy | REQUIRED) - listed, set())


if __name__ == "__main__":
    unittest.main(verbosity=2)
