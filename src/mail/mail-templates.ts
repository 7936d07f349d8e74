import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const MAIL_TEMPLATES = [
  'password-reset',
  'verify-email',
  'confirm-email-change',
  'email-change-notice',
] as const;
export type MailTemplate = (typeof MAIL_TEMPLATES)[number];

/** What a template is filled with; every value is plain text (escaped for the HTML part). */
export type MailVariables = Record<string, string>;

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/**
 * Beside this file in src/ and, copied by `npm run build`, in dist/: the same relative path serves the
 * tests (ts), `npm start` and the container.
 */
export const TEMPLATE_DIR = join(__dirname, 'templates');

const PLACEHOLDER = /\{\{(\w+)\}\}/g;

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Each template's plain-text part (first line `Subject: …`) and HTML part, read once at start. */
export class MailTemplates {
  private readonly sources = new Map<MailTemplate, { subject: string; text: string; html: string }>();

  constructor(directory = TEMPLATE_DIR) {
    // Read at start so that a build that lost the templates refuses to start rather than losing mail later.
    for (const name of MAIL_TEMPLATES) {
      const [first, ...rest] = readFileSync(join(directory, `${name}.txt`), 'utf8').split('\n');
      const subject = /^Subject: (.+)$/.exec(first ?? '')?.[1];
      if (!subject) throw new Error(`mail template ${name}.txt must start with a "Subject: " line`);
      this.sources.set(name, {
        subject,
        text: rest.join('\n').replace(/^\n+/, ''),
        html: readFileSync(join(directory, `${name}.html`), 'utf8'),
      });
    }
  }

  render(name: MailTemplate, variables: MailVariables): RenderedMail {
    const source = this.sources.get(name)!;
    const fill = (template: string, escape: (value: string) => string) =>
      template.replace(PLACEHOLDER, (_match, key: string) => {
        const value = variables[key];
        if (value === undefined) throw new Error(`mail template ${name} needs ${key}`);
        return escape(value);
      });
    return {
      subject: fill(source.subject, (value) => value),
      text: fill(source.text, (value) => value),
      html: fill(source.html, (value) => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c)),
    };
  }
}

/** "30 minutes", "24 hours", "2 days": how long a link lives, in a mail. */
export function describeDuration(seconds: number): string {
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${unit}${count === 1 ? '' : 's'}`;
    }
  }
  const minutes = Math.max(1, Math.round(seconds / 60));
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}
