"""Cohorts: find the cohorts a user was ever in without scanning every cohort's log.

Merges, deletions and `/users/export/ids` ask "which cohorts hold these users"; the index on
(user_num, cohort_pk) answers it from the change log, which keeps every user who ever entered.

Revision ID: 0003_cohorts
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0003_cohorts"
down_revision = None
branch_labels = ("cohorts",)
depends_on = "0001_core"


def upgrade() -> None:
    with op.batch_alter_table("cohort_changes", schema=None) as batch_op:
        batch_op.create_index("ix_cohort_changes_user_cohort", ["user_num", "cohort_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cohort_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_cohort_changes_user_cohort")
