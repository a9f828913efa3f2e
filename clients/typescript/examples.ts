// The spec's example calls ("Usage Examples" in analytics-notification-system.md), written
// the way the fan app makes them: through openapi-fetch with the types that openapi-typescript
// generates from the API's /openapi.json (schema.d.ts; `run.sh` builds it, never hand-edited).
//
// CI only type-checks this file (`tsc --noEmit`). It fails when a route's request no longer
// fits the spec's body, or a 2xx body comes out as `unknown`: every example reads fields of
// its answer into variables of a declared type, which an `unknown` (or a free-form
// `{[key: string]: unknown}`) body cannot fill.

import createClient from "openapi-fetch";

import type { paths } from "./schema";

export type Api = ReturnType<typeof createClient<paths>>;

/** The client the fan app holds: same-origin `fetch('/api/...')` as in the spec, with the
 * user's Supabase JWT (the service's or an operator's for sending). */
export function apiClient(baseUrl: string, accessToken?: string): Api {
  return createClient<paths>({
    baseUrl,
    headers: accessToken ? { Authorization: `Bearer ${accessToken}` } : {},
  });
}

/** The body of a 2xx, or an Error carrying the problem+json the API sent. Compiles only
 * when the body is typed: for an `unknown` (or `any`) one tsc reports "Expected 2
 * arguments" and "An argument for 'bodyTypedUnknown' was not provided". */
function ok<T>(
  answer: { data?: T; error?: unknown; response: Response },
  ..._untyped: unknown extends T ? [bodyTypedUnknown: never] : []
): T {
  if (answer.data === undefined) {
    throw new Error(`${answer.response.status} ${JSON.stringify(answer.error)}`);
  }
  return answer.data;
}

// -- Track User Event: a page view --------------------------------------------------------

export async function trackPageView(api: Api, sessionId: string): Promise<number> {
  const accepted = ok(
    await api.POST("/api/analytics/events", {
      body: {
        event_type: "page_view",
        session_id: sessionId,
        page_url: window.location.href,
        event_data: { referrer: document.referrer },
      },
    }),
  );
  const count: number = accepted.accepted;
  return count;
}

// -- Send Notification: a show reminder (service role or operator) ------------------------

export async function sendShowReminder(
  api: Api,
  user: { id: string },
): Promise<{ requestId: number; notifications: number }> {
  const sent = ok(
    await api.POST("/api/notifications/send", {
      body: {
        userId: user.id,
        type: "show_reminder",
        title: "Show Reminder",
        message: "Arctic Monkeys is performing tonight!",
        data: { showId: "show-123" },
      },
    }),
  );
  const requestId: number = sent.requestId;
  const notifications: number = sent.notifications;
  return { requestId, notifications };
}

// -- Get Recommendations: personalized artists --------------------------------------------

export async function recommendedArtists(
  api: Api,
): Promise<{ artistId: number; score: number; reason: string }[]> {
  const { recommendations } = ok(
    await api.GET("/api/analytics/recommendations", {
      params: { query: { type: "artists", limit: 10 } },
    }),
  );
  return recommendations.map((pick) => {
    const artistId: number = pick.artist_id;
    const score: number = pick.score;
    const reason: string = pick.reason;
    return { artistId, score, reason };
  });
}

// -- Read preferences: the caller's category x channel matrix ------------------------------

export async function emailsShowReminders(api: Api): Promise<boolean> {
  const preferences = ok(await api.GET("/api/notifications/preferences"));
  const muted: boolean = preferences.muted;
  const timezone: string = preferences.timezone;
  const showReminders = preferences.channels["show_reminders"];
  const email: boolean | undefined = showReminders?.email;
  return !muted && timezone.length > 0 && email === true;
}

// -- The predicted setlist of a show -------------------------------------------------------

export async function predictedSetlist(
  api: Api,
  showId: number,
): Promise<{ length: number; songs: { title: string; probability: number; reason: string }[] }> {
  const answer = ok(
    await api.GET("/api/shows/{show_id}/predicted-setlist", {
      params: { path: { show_id: showId } },
    }),
  );
  const length: number = answer.prediction.predicted_length;
  const songs = answer.prediction.songs.map((song) => {
    const title: string = song.title;
    const probability: number = song.probability;
    const reason: string = song.reason;
    return { title, probability, reason };
  });
  return { length, songs };
}
