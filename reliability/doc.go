// Package reliability holds tests, and nothing else, that run the built
// central and agencies as processes and try to break them: a crash loop
// that SIGKILLs the central while agencies upload, a network fuzz of
// thousands of hostile connections during a real run, slowloris, idle and
// connection-flood tests, a stranger's flood timed against a quiet run,
// damaged files, and attacks on who may do what (certificates that are
// missing, foreign, expired, revoked or another agency's, plain text, two
// processes with one certificate), each beside a real five-agency upload.
// The long ones run with LOTTERY_LONG=1; docs/durability.md and
// docs/security.md say what they prove.
package reliability
