// Package gendata writes realistic, deterministic agency files (the format
// of .data/agency-N.csv) for demos, tests and benchmarks: Spanish names with
// accents, zero-padded DNIs, birthdates from 1940 to 2005, and exactly the
// requested number of winning bets at positions fixed by the seed.
package gendata

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"lottery"
	"lottery/csvrow"
)

var firstNames = []string{
	"Santiago", "Valentina", "Mateo", "Sofía", "Benjamín", "Martina", "Tomás", "Lucía", "Joaquín", "Catalina",
	"Agustín", "Camila", "Nicolás", "María José", "Matías", "Ana Inés", "Facundo", "Julieta", "Ramón", "Agustina",
	"Bautista", "Florencia", "Iñaki", "Renée", "Joaquín Andrés", "Zoë", "Lautaro", "Milagros", "Emilio", "Belén",
}

var lastNames = []string{
	"González", "Rodríguez", "Gómez", "Fernández", "López", "Díaz", "Martínez", "Pérez", "García", "Sánchez",
	"Romero", "Sosa", "Álvarez", "Torres", "Ruiz", "Ramírez", "Flores", "Acuña", "Benítez", "Medina",
	"Núñez", "Ibáñez", "D'Alessandro", "de la Fuente", "Peña", "Muñoz", "Ortiz", "Giménez", "Rojas", "Suárez",
}

// Bets returns the bets of one agency file: n bets of which winners (at
// most n) play the winning number, all a pure function of the arguments.
func Bets(agency, n, winners int, seed uint64) []lottery.Bet {
	rng := rand.New(rand.NewPCG(seed, uint64(agency)))
	winners = min(winners, n)
	winning := make(map[int]bool, winners)
	for len(winning) < winners {
		winning[rng.IntN(n)] = true
	}
	bets := make([]lottery.Bet, n)
	for i := range bets {
		number := rng.IntN(lottery.MaxNumber) // 0..9998
		if number >= lottery.WinningNumber {
			number++ // skip the winning number: only the chosen rows win
		}
		if winning[i] {
			number = lottery.WinningNumber
		}
		bets[i] = lottery.Bet{
			Agency:    agency,
			FirstName: firstNames[rng.IntN(len(firstNames))],
			LastName:  lastNames[rng.IntN(len(lastNames))],
			Document:  fmt.Sprintf("%08d", rng.IntN(100_000_000)),
			Birthdate: fmt.Sprintf("%04d-%02d-%02d", 1940+rng.IntN(66), 1+rng.IntN(12), 1+rng.IntN(28)),
			Number:    number,
		}
	}
	return bets
}

// Write writes bets as an agency file: no header, CRLF line endings.
func Write(w io.Writer, bets []lottery.Bet) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var row []byte
	for _, b := range bets {
		row = row[:0]
		for _, f := range []string{b.FirstName, b.LastName, b.Document, b.Birthdate} {
			row = csvrow.AppendField(row, f)
			row = append(row, ',')
		}
		row = fmt.Appendf(row, "%d\r\n", b.Number)
		if _, err := bw.Write(row); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteFile writes agency-<agency>.csv into dir and returns its path. It
// refuses to overwrite an existing file unless overwrite is set.
func WriteFile(dir string, agency, n, winners int, seed uint64, overwrite bool) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("agency-%d.csv", agency))
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return path, err
	}
	if err := Write(f, Bets(agency, n, winners, seed)); err != nil {
		f.Close()
		return path, err
	}
	return path, f.Close()
}
