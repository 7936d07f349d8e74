import { CreateUsers1763800000000 } from './1763800000000-CreateUsers';
import { CreateTokens1763900000000 } from './1763900000000-CreateTokens';
import { CreateRateLimits1763900000100 } from './1763900000100-CreateRateLimits';
import { CreateSessions1763900000200 } from './1763900000200-CreateSessions';
import { AddTokensRevokedBefore1764000000000 } from './1764000000000-AddTokensRevokedBefore';
import { AddEmailVerified1764200000000 } from './1764200000000-AddEmailVerified';
import { CreateLinkTokensAndMailOutbox1764200000100 } from './1764200000100-CreateLinkTokensAndMailOutbox';
import { AddFamilyAuthAt1764500000000 } from './1764500000000-AddFamilyAuthAt';
import { MoveReplayToFamilies1764700000000 } from './1764700000000-MoveReplayToFamilies';
import { CreateMfa1765000000000 } from './1765000000000-CreateMfa';

/** Every migration, oldest first; both the service and `npm run migration:run` apply this list. */
export const MIGRATIONS = [
  CreateUsers1763800000000,
  CreateTokens1763900000000,
  CreateRateLimits1763900000100,
  CreateSessions1763900000200,
  AddTokensRevokedBefore1764000000000,
  AddEmailVerified1764200000000,
  CreateLinkTokensAndMailOutbox1764200000100,
  AddFamilyAuthAt1764500000000,
  MoveReplayToFamilies1764700000000,
  CreateMfa1765000000000,
];
