"""Development tools over the other packages (development only, never packed), one command each.

``dry_run`` (the README's first command, with the demo checkpoint), ``demo_model`` and
``starter_model`` (the one commands that make the two committed checkpoints),
``benchmark_inference`` (will an ensemble finish inside Kaggle's 9 hours?) and
``benchmark_training`` (the README's training figures). They sit on top so that the packages
below never import each other backwards: ``dfdc_infer`` <- ``dfdc_fakes`` <- ``dfdc_sample`` <-
``dfdc_train`` <- ``dfdc_tools`` (``tests/test_imports.py``).
"""
