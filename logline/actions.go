package logline

// The actions of the log contract (README, "Logs"), in one list: the names
// the black-box tests parse. Most are the course's Spanish; the echo's is
// the course's English. A new line gets its action here first.
const (
	// Both programs.

	Config           = "config"             // every setting at start; fail and exit 2 on a bad one; WARNING in_progress per suspicious one
	TLS              = "tls"                // WARNING at every start with TLS off: the lottery is open to anyone
	Shutdown         = "shutdown"           // one in_progress line per resource released, then success (or fail)
	WinnersQuery     = "consulta_ganadores" // the agency: winners received; the central: a query that ended before the draw
	Admin            = "admin"              // the central's admin listener (metrics, health, status page) listens, or cannot
	AdminHTTP        = "admin_http"         // DEBUG: a request the admin listener's HTTP server refused (malformed, too large)
	Metrics          = "metrics"            // WARNING: a collector failed during a scrape of /metrics (it reads atomics: never seen)
	ReceiptCheck     = "verificar_recibo"   // the agency checked a receipt of the audit log (fail: it stops trusting the central)
	DrawStatementChk = "verificar_sorteo"   // the agency checked the signed draw statement

	// The central.

	Recover         = "recuperar"           // at start: what the files hold; fail (exit 1, nothing changed) on damage, also found later
	Verify          = "verificar"           // server -check; and the end of the background verification
	Repair          = "reparar"             // server -repair: what was kept and moved aside
	Listen          = "escuchar"            // listening for agencies
	Authenticate    = "autenticar"          // a TLS handshake refused (fail, with a reason), or passed (DEBUG)
	AgencyReplaced  = "agencia_reemplazada" // a newer connection of the same agency took over
	ReloadCRL       = "recargar_crl"        // SIGHUP reread the revocation list
	Connection      = "conexion"            // a connection opened (DEBUG) or refused at a limit
	Accept          = "accept"              // accepting failed, retried after a pause
	AgencyConnected = "agencia_conectada"   // an agency said Hello
	BatchReceived   = "apuesta_recibida"    // a batch stored, or rejected with its code
	BatchDuplicate  = "apuesta_duplicada"   // a resent batch acked again without storing it
	BetStored       = "apuesta_almacenada"  // a bet stored (INFO for a single bet, DEBUG for batches)
	AgencyFinished  = "agencia_finalizada"  // an agency finished, and how many the draw still waits for
	Draw            = "sorteo"              // the draw, once (once on every node of a replicated central)
	RecoverDraw     = "recuperar_sorteo"    // the draw recomputed from the file after a restart
	Replica         = "replica"             // a node joined its group, or failed
	Leader          = "lider"               // this node leads, or stopped leading
	Raft            = "raft"                // Raft's own lines
	WinnersSent     = "ganadores_enviados"  // an agency got its winners
	Echo            = "receive_message"     // an echo (the course's health check): the sender and its bytes
	BadMessage      = "recibir_mensaje"     // not the echo: a malformed, oversize, unexpected or idle connection
	SendFailed      = "enviar_mensaje"      // an answer could not be written: the peer is gone
	ConnectionEnded = "conexion_cerrada"    // DEBUG: a connection ended
	Receipt         = "recibo"              // fail: an ack's receipt could not be built (the agency will not count the ack)
	Commitment      = "compromiso"          // the committed mode's commitment to the draw's secret, stored or found at start
	DrawStatement   = "firmar_sorteo"       // fail: the draw's statement could not be signed, or its file written

	// The agency.

	ReadBets       = "leer_apuestas"    // the agency file opened
	ReadBet        = "leer_apuesta"     // an invalid row skipped
	Connect        = "conectar"         // connected, retrying, or refused for good
	ConnectionLost = "conexion_perdida" // lost the connection, and when it retries
	Resend         = "reenviar"         // resent the unacknowledged batches
	CentralForgot  = "central_olvido"   // ERROR: a central welcomed it with fewer batches than it had acknowledged
	BatchSent      = "batch_enviado"    // DEBUG: a batch acked
	UploadProgress = "progreso"         // every 10 % of the file
	BetSent        = "apuesta_enviada"  // the single bet acked (or a rejected batch)
	LoopFinished   = "loop_finished"    // everything sent
	Finish         = "finalizar"        // the central refused the "finished" message
)
