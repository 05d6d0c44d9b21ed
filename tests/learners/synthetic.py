"""Deterministic synthetic labeled text, made here (no download): support tickets, product pairs, tags.

Each set mixes words that point to a class with words every class uses, and flips a share of the
labels, so a model can learn it well above chance but not perfectly (and its calibration means
something).
"""

from __future__ import annotations

import random

from truthset.learners import Task

TOPICS = {
    "billing": ["invoice", "charge", "refund", "payment", "card", "billed", "receipt", "subscription", "price"],
    "shipping": ["parcel", "delivery", "courier", "tracking", "shipped", "arrived", "package", "address", "late"],
    "bug": ["crash", "error", "button", "screen", "freezes", "login", "broken", "update", "loading"],
}
COMMON = ["hello", "please", "help", "my", "order", "account", "today", "again", "thanks", "the", "app", "still"]


def tickets(n: int, seed: int = 0, noise: float = 0.1) -> tuple[list[Task], list[str]]:
    """Support tickets labeled billing / shipping / bug (``noise`` of the labels flipped)."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    tasks, labels = [], []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = rng.sample(TOPICS[topic], 2) + rng.sample(COMMON, 4)
        other = rng.choice([t for t in topics if t != topic])
        if rng.random() < 0.3:  # a word of another topic: not every ticket is clear-cut
            words.append(rng.choice(TOPICS[other]))
        rng.shuffle(words)
        label = other if rng.random() < noise else topic
        tasks.append(Task(f"ticket-{seed}-{i}", {"text": " ".join(words).capitalize() + "."}))
        labels.append(label)
    return tasks, labels


BRANDS = ["Sony", "Panasonic", "Samsung", "Onkyo", "Denon", "Canon", "Philips", "Garmin"]
KINDS = ["Cordless Phone", "Home Theater System", "Digital Camera", "Flat Panel TV Mount", "GPS Navigator"]


def _code(rng: random.Random) -> str:
    return f"{rng.choice('ABKXTV')}{rng.choice('ABKXTV')}-{rng.randint(100, 9999)}{rng.choice('BSW')}"


def product_pairs(n: int, seed: int = 0, noise: float = 0.05) -> tuple[list[Task], list[str]]:
    """Pairs of product records (``left``/``right``: name, description): the same product or not."""
    rng = random.Random(seed)
    tasks, labels = [], []
    for i in range(n):
        brand, kind, code = rng.choice(BRANDS), rng.choice(KINDS), _code(rng)
        left = {"name": f"{brand} {kind} - {code}", "description": f"{brand} {kind} {code.replace('-', '')}, black"}
        same = i % 2 == 0
        if same:
            right = {"name": f"{brand} {code.replace('-', '')} {kind.split()[-1]}", "description": f"{kind} by {brand}"}
        else:  # a near miss: often the same brand and kind, another model
            other_brand = brand if rng.random() < 0.6 else rng.choice(BRANDS)
            right = {
                "name": f"{other_brand} {_code(rng)} {kind.split()[-1]}",
                "description": f"{kind} by {other_brand}",
            }
        label = ("different" if same else "same") if rng.random() < noise else ("same" if same else "different")
        tasks.append(Task(f"pair-{seed}-{i}", {"left": left, "right": right}))
        labels.append(label)
    return tasks, labels


TAGS = {"urgent": ["asap", "immediately", "urgent"], "refund": ["refund", "money back"], "angry": ["terrible", "awful"]}


def tagged(n: int, seed: int = 0) -> tuple[list[Task], list[list[str]]]:
    """Messages with any of the tags urgent / refund / angry (``labels`` questions)."""
    rng = random.Random(seed)
    tasks, labels = [], []
    for i in range(n):
        tags = [t for t in sorted(TAGS) if rng.random() < 0.4]
        words = rng.sample(COMMON, 5) + [rng.choice(TAGS[t]) for t in tags]
        rng.shuffle(words)
        tasks.append(Task(f"msg-{seed}-{i}", {"text": " ".join(words)}))
        labels.append(tags)
    return tasks, labels
