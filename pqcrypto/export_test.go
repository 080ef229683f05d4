package pqcrypto

// Exported for the external tests and fuzz targets only.
var ParseBackupPlaintext = parseBackupPlaintext

func MarshalBackupPlaintext(b *Backup) ([]byte, error) { return b.marshal() }
