"""Registers Grad2Reward with verl: the ``grad2reward`` reward manager (in verl's batch registry
and in its reward-loop registry) and the ``grad2reward_*`` advantage estimators.

verl imports this module in every process that imports verl, through this package's
``verl.plugins`` entry point (setup.cfg). verl hides a plugin's import errors (it logs them at
debug level), so when a name is unknown, set ``VERL_USE_EXTERNAL_MODULES=agents.verl.plugin``:
verl then imports it the plain way, and an error shows.
"""

from . import advantages, reward, reward_loop

__all__ = ["advantages", "reward", "reward_loop"]
