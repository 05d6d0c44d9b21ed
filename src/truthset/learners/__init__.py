"""Learners: models that answer questions, as a pure layer (no database, no web framework).

Each learner returns plain :class:`Prediction` records (or :class:`InvalidAnswer` reports) that the
service layer stores: the built-in text classifier (``truthset.learners.text_classifier``, imported
on its own since it loads scikit-learn), the client of an external model server
(``model_server``) and an OpenAI-compatible LLM labeler (``llm_labeler``). See docs/learners.md.
"""

from truthset.learners._records import InvalidAnswer, Prediction, Task, check_answer, check_score

__all__ = ["InvalidAnswer", "Prediction", "Task", "check_answer", "check_score"]
