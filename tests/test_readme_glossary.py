"""The README's Chinese glossary: the core vocabulary, each term with its English name and
where it is taught; and the offline promise is qualified ("once installed")."""

from __future__ import annotations

import re

from course_lib import config

CORE_TERMS = (
    "训练后量化",
    "量化感知训练",
    "动态范围量化",
    "全整数量化",
    "校准数据",
    "缩放因子",
    "零点",
    "稀疏度",
    "2:4 结构化稀疏",
    "权重聚类",
    "权值共享",
    "霍夫曼编码",
    "知识蒸馏",
    "蒸馏温度",
    "损失缩放",
    "算术强度",
)


def _glossary_rows() -> list[list[str]]:
    text = (config.repo_root() / "README.md").read_text(encoding="utf-8")
    section = text.split("### 术语对照", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_glossary_has_at_least_25_terms_with_english_and_a_notebook():
    rows = _glossary_rows()
    assert len(rows) >= 25, f"only {len(rows)} glossary rows"
    for term, english, notebook, api in rows:
        assert term and api, f"empty cell in {term!r}"
        assert re.search(r"[A-Za-z]", english), f"{term!r} has no English term"
        match = re.search(r"\(notebooks/(\d\d_[a-z0-9_]+)\.ipynb\)", notebook)
        assert match, f"{term!r} does not link a notebook"
        assert (config.repo_root() / "notebooks" / f"{match.group(1)}.ipynb").is_file()
    terms = {row[0] for row in rows}
    assert not set(CORE_TERMS) - terms, f"missing: {sorted(set(CORE_TERMS) - terms)}"


def test_offline_promise_says_once_installed():
    text = (config.repo_root() / "README.md").read_text(encoding="utf-8")
    assert "不需要联网" in text and "安装完成后" in text
    assert "，也不需要联网" not in text
