import { CreateUsers1763800000000 } from './1763800000000-CreateUsers';
import { CreateSessions1763900000200 } from './1763900000200-CreateSessions';

/** Every migration, oldest first; both the service and `npm run migration:run` apply this list. */
export const MIGRATIONS = [CreateUsers1763800000000, CreateSessions1763900000200];
