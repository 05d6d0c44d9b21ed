"""The demo project: product reviews to classify, so a new install has real-looking work to do."""

from __future__ import annotations

import itertools
import random
from typing import Any

PROJECT_NAME = "Demo: product review sentiment"

SPEC: dict[str, Any] = {
    "fields": [
        {"name": "product", "type": "text", "label": "Product"},
        {"name": "review", "type": "text", "label": "Customer review"},
    ],
    "questions": [
        {
            "name": "sentiment",
            "type": "label",
            "prompt": "What is the overall sentiment of the review?",
            "options": [
                {"value": "positive", "hotkey": "1"},
                {"value": "neutral", "hotkey": "2"},
                {"value": "negative", "hotkey": "3"},
            ],
        },
        {
            "name": "topics",
            "type": "labels",
            "prompt": "Which aspects does the review talk about?",
            "options": ["quality", "price", "shipping", "customer service", "usability"],
            "required": False,
        },
        {
            "name": "helpfulness",
            "type": "rating",
            "prompt": "How useful is this review to other buyers?",
            "min": 1,
            "max": 5,
            "labels": {"1": "useless", "5": "very useful"},
        },
        {
            "name": "summary",
            "type": "text",
            "prompt": "Summarise the review in one line (optional).",
            "required": False,
            "max_length": 200,
            "multiline": False,
        },
    ],
}

INSTRUCTIONS = """\
# Review sentiment

Read the review and answer the four questions.

* **Sentiment**: the reviewer's overall feeling. Mixed reviews that end up recommending the
  product are *positive*; a shrug is *neutral*.
* **Topics**: tick every aspect the review mentions, even in passing.
* **Helpfulness**: would this review help someone decide? Specific details score high.
* **Summary**: optional, one line.

Keyboard: `1` `2` `3` pick the sentiment, `Enter` submits, `s` skips.
"""

_PRODUCTS = [
    "Aeropress coffee maker",
    "Noise-cancelling headphones",
    "Trail running shoes",
    "Cast iron skillet",
    "Mechanical keyboard",
    "Robot vacuum",
    "Electric toothbrush",
    "Yoga mat",
    "4K monitor",
    "Air fryer",
    "Kindle e-reader",
    "Camping tent (2 person)",
    "Standing desk",
    "Bluetooth speaker",
    "Chef's knife",
]
_OPENINGS = {
    "positive": [
        "Absolutely love it.",
        "Exceeded my expectations.",
        "Best purchase this year.",
        "Works exactly as described.",
        "Five stars, would buy again.",
    ],
    "neutral": [
        "It's fine, I guess.",
        "Does the job, nothing more.",
        "Mixed feelings so far.",
        "About what you'd expect for the money.",
        "Neither great nor terrible.",
    ],
    "negative": [
        "Really disappointed.",
        "Stopped working after two weeks.",
        "Would not recommend.",
        "Returned it the next day.",
        "Not worth the hassle.",
    ],
}
_DETAILS = {
    "quality": [
        "The build feels solid and well finished.",
        "Cheap plastic that creaks when you touch it.",
        "Materials are okay for daily use.",
    ],
    "price": ["Great value for the price.", "Way overpriced for what you get.", "The price was fair on sale."],
    "shipping": [
        "Arrived two days early, well packed.",
        "The box was crushed on arrival.",
        "Shipping took almost three weeks.",
    ],
    "customer service": [
        "Support replied within an hour and sorted it out.",
        "Customer service never answered my emails.",
        "Support was polite but slow.",
    ],
    "usability": [
        "Set-up took five minutes and the controls are intuitive.",
        "The manual is useless and the app keeps crashing.",
        "There is a small learning curve.",
    ],
}


def demo_tasks(count: int = 60, seed: int = 7) -> list[dict[str, Any]]:
    """Reviews assembled from real-sounding phrases, reproducible for a seed."""
    rng = random.Random(seed)
    sentiments = itertools.cycle(["positive", "negative", "neutral", "positive"])
    tasks = []
    for number in range(count):
        sentiment = next(sentiments)
        topics = rng.sample(sorted(_DETAILS), k=rng.randint(1, 3))
        sentences = [rng.choice(_OPENINGS[sentiment])] + [rng.choice(_DETAILS[topic]) for topic in topics]
        tasks.append(
            {
                "unique_id": f"demo-review-{number + 1:04d}",
                "data": {"product": rng.choice(_PRODUCTS), "review": " ".join(sentences)},
                "metadata": {"source": "demo", "stars": {"positive": 5, "neutral": 3, "negative": 1}[sentiment]},
                "priority": 0,
            }
        )
    return tasks
