from switchboard_retrieval.models import Base
from switchboard_shared.migrations_env import run_migrations

run_migrations(Base.metadata)
