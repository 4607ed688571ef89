"""The check both packages' generated configuration files must pass."""
import os
import re
import subprocess


def check_all_commented(binary, path, min_keys):
    """Asserts the shipped file at path lists every key of `binary
    --dump-config`, commented out at its default, sets none, and loads to the
    defaults. Returns (the file's text, the default dump)."""
    def dump(conf):
        return subprocess.run([binary, "-c", conf, "--dump-config"], check=True,
                              stdout=subprocess.PIPE).stdout.decode()
    name = os.path.basename(path)
    with open(path) as f:
        text = f.read()
    defaults = dump("/dev/null")
    keys = re.findall(r"^([a-z_][a-z0-9_]*) = ?(.*)$", defaults, re.M)
    assert len(keys) > min_keys, defaults
    for k, v in keys:
        want = (";%s = %s" % (k, v)).rstrip()
        assert re.search(r"^%s$" % re.escape(want), text, re.M), "%s lacks %r" % (name, want)
    assert not re.search(r"^[a-z_]+ =", text, re.M), "a key is set in %s" % name
    assert dump(path) == defaults, "loading the shipped %s changes the configuration" % name
    return text, defaults
