module github.com/apitoken/apitoken/tools

go 1.25.0
