import type { AppConfig } from '../config/app-config';

/** The frontend pages that receive mailed tokens (the contract fixes these paths). */
export const LINK_PAGES = {
  password_reset: '/reset-password',
  email_verify: '/verify-email',
  email_change: '/confirm-email',
} as const;

export function linkTo(config: AppConfig, page: keyof typeof LINK_PAGES, token: string): string {
  return `${config.mail.frontendUrl}${LINK_PAGES[page]}?token=${encodeURIComponent(token)}`;
}
