"""Where each leg and room lives: the local switchboard (core.rooms) or, with several servers, Redis."""
