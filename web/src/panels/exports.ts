// The CSV and PDF export buttons: the file is fetched with the key in the
// Authorization header (never in a URL) and handed to the browser as a Blob.
import type { Client } from '../api';
import { byId } from '../format';

async function save(client: Client, format: 'csv' | 'pdf', query: string): Promise<void> {
  const { blob, filename } = await client.download(
    `/api/v2/usage/export?format=${format}&${query}`,
    `quotum-usage.${format}`,
  );
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Wires the export buttons; `query()` gives the filter's range (null: none valid). */
export function watchExports(client: Client, query: () => string | null): void {
  for (const format of ['csv', 'pdf'] as const) {
    const button = byId<HTMLButtonElement>(`export-${format}`);
    button.onclick = async () => {
      const q = query();
      if (q === null) return;
      const status = byId('export-status');
      button.disabled = true;
      status.textContent = `Preparing the ${format.toUpperCase()} file…`;
      try {
        await save(client, format, q);
        status.textContent = `${format.toUpperCase()} file downloaded.`;
      } catch (e) {
        status.textContent = `The export failed: ${e instanceof Error ? e.message : 'no answer'}.`;
      } finally {
        button.disabled = false;
      }
    };
  }
}
