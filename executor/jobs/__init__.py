"""Jobs: the specs the controller asks the executor to run, and the engine that runs them."""
