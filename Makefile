# The two commands; see README.md.
.PHONY: run test
run:
	tools/dev.sh run
test:
	tools/dev.sh test
