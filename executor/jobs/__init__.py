"""Jobs: the specs the controller asks the executor to run, and (issue 4) their engine."""
