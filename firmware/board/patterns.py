# Light and buzzer patterns: what the kiosk's LIGHTS and BUZZER messages name. Pure, for MicroPython
# and CPython alike; the board's tasks turn them into PWM duty cycles and tones.

# A light pattern is a list of steps (red, green, blue 0-255, milliseconds), repeated for as long as
# it is the current one. One step = steady.
LIGHTS = {
    "off": [(0, 0, 0, 1000)],
    "boot": [(0, 0, 80, 150), (0, 0, 0, 150)],  # blue flicker: starting, no kiosk yet
    "idle": [(0, 120, 0, 1000)],  # steady green: ready for packaging
    "awaiting_deposit": [(0, 0, 255, 300), (0, 0, 40, 300)],  # blue pulse: drop it in the slot
    "issuing": [(255, 255, 255, 120), (40, 40, 40, 120)],  # white flicker: working
    "voucher": [(0, 255, 0, 1000)],  # bright green: take your voucher
    "notice": [(255, 140, 0, 1000)],  # amber: read the screen
    "fault": [(255, 0, 0, 500), (0, 0, 0, 500)],  # red blink: kiosk software is down or silent
}

# A buzzer pattern is played once: steps (frequency Hz, milliseconds), 0 Hz = silence. Every light
# pattern has its own, played as the pattern begins, so the lights mean something without colour:
# the tunes differ in their number of notes or the way their pitch moves, not in pitch alone.
BUZZER = {
    "off": [(900, 60), (0, 40), (700, 60), (0, 40), (500, 60)],  # three falling: going dark
    "boot": [(1200, 50), (0, 30), (1600, 50), (0, 30), (2000, 50)],  # three rising: starting
    "idle": [(1400, 70)],  # one soft note: ready for the next packaging
    "awaiting_deposit": [(2400, 60), (0, 60), (2400, 60)],  # two equal: scanned, now drop it
    "issuing": [(2400, 30), (0, 50), (2400, 30), (0, 50), (2400, 30)],  # three quick ticks: working
    "voucher": [(1800, 80), (0, 40), (2700, 120)],  # rising chime: take your voucher
    "notice": [(600, 150), (0, 80), (450, 250)],  # falling low: read the screen
    "fault": [(400, 200), (0, 60), (300, 200), (0, 60), (400, 200), (0, 60), (300, 200)],  # low siren
}


def light_at(name, elapsed_ms):
    """(red, green, blue) of pattern ``name`` at ``elapsed_ms`` since it started."""
    steps = LIGHTS[name]
    period = 0
    for step in steps:
        period += step[3]
    t = elapsed_ms % period
    for red, green, blue, length in steps:
        if t < length:
            return (red, green, blue)
        t -= length
    return steps[-1][:3]


def tone_at(name, elapsed_ms):
    """Frequency of buzzer pattern ``name`` at ``elapsed_ms``, 0 in a pause, None once it is over."""
    t = elapsed_ms
    for freq, length in BUZZER[name]:
        if t < length:
            return freq
        t -= length
    return None
