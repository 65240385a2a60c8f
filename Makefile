# Developer shortcuts; CI runs .ci/run.

.PHONY: test bench bench-short

# Every module of go.work (./... alone is the root module only), as README.md says.
test:
	go test -race -count=1 $$(go list -m -f '{{.Dir}}/...')

# The benchmark suite (bench/README.md): about 5 minutes, table in bench/out/results.md.
bench:
	go run ./bench/cmd/benchtable

# Every contender briefly, as CI runs it.
bench-short:
	go run ./bench/cmd/benchtable -short
