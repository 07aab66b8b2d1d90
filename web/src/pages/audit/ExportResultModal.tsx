import { Badge, Button, Modal } from '../../components';
import type { ExportResult } from './api';

export function ExportResultModal({ result, onClose }: { result: ExportResult | null; onClose: () => void }) {
  const matches = result?.localChecksum != null && result.localChecksum === result.serverChecksum;
  return (
    <Modal
      open={result !== null}
      onClose={onClose}
      title="Export downloaded"
      description={result ? `${result.filename} · ${result.bytes.toLocaleString()} bytes` : undefined}
      footer={
        <Button variant="primary" onClick={onClose}>
          Done
        </Button>
      }
    >
      {result && (
        <dl className="details">
          <dt>SHA-256</dt>
          <dd className="mono" data-testid="export-checksum">
            {result.serverChecksum ?? 'Not provided by the server'}
          </dd>
          <dt>Integrity</dt>
          <dd>
            {result.localChecksum === null ? (
              <span className="muted">Compare with `sha256sum {result.filename}`.</span>
            ) : matches ? (
              <Badge tone="success">Downloaded bytes match the checksum</Badge>
            ) : (
              <Badge tone="danger">Checksum mismatch: {result.localChecksum}</Badge>
            )}
          </dd>
        </dl>
      )}
    </Modal>
  );
}
