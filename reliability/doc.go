// Package reliability holds long tests, and nothing else, that run the built
// central and agencies as processes and try to break them: a crash loop
// that SIGKILLs the central while agencies upload, a network fuzz of
// thousands of hostile connections during a real run, and slowloris,
// idle and connection-flood tests. docs/durability.md says what they prove.
package reliability
