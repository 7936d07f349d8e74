// The files the compiled service reads at run time that tsc does not emit: mail templates and the script
// Swagger UI loads. Used by `npm run build` and `npm run dev`.
import { cpSync } from 'node:fs';

for (const dir of ['src/mail/templates', 'src/openapi/browser']) {
  cpSync(dir, `dist/${dir}`, { recursive: true });
}
