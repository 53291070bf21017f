module kvmux.dev/kvmuxtest

go 1.22
