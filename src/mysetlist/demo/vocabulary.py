"""Word lists the synthetic world is made of: genres, cities, names, time zones."""

from __future__ import annotations

GENRES: tuple[str, ...] = (
    "rock", "indie", "pop", "hip-hop", "metal", "jazz", "electronic", "folk", "punk", "r&b",
    "country", "latin", "k-pop", "blues", "soul", "reggae", "classical", "alt", "emo", "funk",
    "house", "grunge", "synthwave", "gospel",
)  # fmt: skip

# (city, country, IANA time zone); venues are placed in these.
CITIES: tuple[tuple[str, str, str], ...] = (
    ("New York", "US", "America/New_York"),
    ("Los Angeles", "US", "America/Los_Angeles"),
    ("Chicago", "US", "America/Chicago"),
    ("Austin", "US", "America/Chicago"),
    ("Nashville", "US", "America/Chicago"),
    ("Seattle", "US", "America/Los_Angeles"),
    ("Denver", "US", "America/Denver"),
    ("Atlanta", "US", "America/New_York"),
    ("Toronto", "CA", "America/Toronto"),
    ("Montreal", "CA", "America/Toronto"),
    ("Mexico City", "MX", "America/Mexico_City"),
    ("São Paulo", "BR", "America/Sao_Paulo"),
    ("Buenos Aires", "AR", "America/Argentina/Buenos_Aires"),
    ("London", "GB", "Europe/London"),
    ("Manchester", "GB", "Europe/London"),
    ("Glasgow", "GB", "Europe/London"),
    ("Dublin", "IE", "Europe/Dublin"),
    ("Paris", "FR", "Europe/Paris"),
    ("Berlin", "DE", "Europe/Berlin"),
    ("Hamburg", "DE", "Europe/Berlin"),
    ("Amsterdam", "NL", "Europe/Amsterdam"),
    ("Madrid", "ES", "Europe/Madrid"),
    ("Barcelona", "ES", "Europe/Madrid"),
    ("Lisbon", "PT", "Europe/Lisbon"),
    ("Milan", "IT", "Europe/Rome"),
    ("Stockholm", "SE", "Europe/Stockholm"),
    ("Copenhagen", "DK", "Europe/Copenhagen"),
    ("Warsaw", "PL", "Europe/Warsaw"),
    ("Tokyo", "JP", "Asia/Tokyo"),
    ("Osaka", "JP", "Asia/Tokyo"),
    ("Seoul", "KR", "Asia/Seoul"),
    ("Sydney", "AU", "Australia/Sydney"),
    ("Melbourne", "AU", "Australia/Melbourne"),
    ("Auckland", "NZ", "Pacific/Auckland"),
)

VENUE_KINDS: tuple[str, ...] = (
    "Arena", "Hall", "Theatre", "Ballroom", "Club", "Garden", "Amphitheatre", "Music Hall",
    "Pavilion", "Lounge", "Warehouse", "Forum",
)  # fmt: skip

# Where users live (time zone, locale) and how common each is among them.
USER_REGIONS: tuple[tuple[str, str, float], ...] = (
    ("America/New_York", "en-US", 0.20),
    ("America/Chicago", "en-US", 0.09),
    ("America/Los_Angeles", "en-US", 0.12),
    ("America/Denver", "en-US", 0.03),
    ("America/Toronto", "en-CA", 0.04),
    ("America/Mexico_City", "es-MX", 0.05),
    ("America/Sao_Paulo", "pt-BR", 0.05),
    ("Europe/London", "en-GB", 0.10),
    ("Europe/Berlin", "de-DE", 0.07),
    ("Europe/Paris", "fr-FR", 0.05),
    ("Europe/Madrid", "es-ES", 0.04),
    ("Europe/Amsterdam", "nl-NL", 0.02),
    ("Europe/Stockholm", "sv-SE", 0.02),
    ("Asia/Tokyo", "ja-JP", 0.04),
    ("Asia/Seoul", "ko-KR", 0.03),
    ("Australia/Sydney", "en-AU", 0.05),
)

FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Ben", "Chloe", "Diego", "Emma", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kai",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wren", "Xavier", "Yara", "Zoe", "Aiko", "Bruno", "Carmen", "Dara", "Elif", "Felix",
    "Greta", "Hana", "Ivan", "Jonas", "Keiko", "Luca", "Maya", "Nico", "Olivia", "Pablo",
    "Ravi", "Sofia", "Theo", "Ugo", "Vera", "Wes", "Yuki", "Zane", "Min-jun", "Seo-yeon",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Moreno", "Walsh", "Okafor", "Lindqvist", "Tanaka", "Silva", "Novak", "Kowalski",
    "Reyes", "Fischer", "Dubois", "Kim", "Park", "Rossi", "Murphy", "Khan", "Nguyen",
    "Haddad", "Jensen", "Costa", "Baker", "Hughes", "Ortega", "Sato", "Varga", "Byrne",
    "Adeyemi", "Larsen", "Mendes", "Quinlan", "Stone", "Vance", "Winter", "Young",
)  # fmt: skip

ADJECTIVES: tuple[str, ...] = (
    "Velvet", "Neon", "Silver", "Electric", "Midnight", "Golden", "Crimson", "Hollow",
    "Wild", "Broken", "Paper", "Cosmic", "Lunar", "Static", "Wandering", "Frozen", "Burning",
    "Quiet", "Violet", "Savage", "Gentle", "Restless", "Distant", "Endless", "Northern",
    "Glass", "Iron", "Crystal", "Faded", "Atomic", "Scarlet", "Tender", "Lucky", "Sunday",
)  # fmt: skip

NOUNS: tuple[str, ...] = (
    "Fox", "Harbor", "Echo", "River", "Tiger", "Mirror", "Comet", "Garden", "Wolf", "Signal",
    "Ocean", "Lantern", "Falcon", "Canyon", "Engine", "Orchid", "Raven", "Thunder", "Valley",
    "Satellite", "Ghost", "Parade", "Horizon", "Cathedral", "Arrow", "Desert", "Machine",
    "Heart", "Season", "Avenue", "Circus", "Kingdom", "Rebel", "Prophet", "Sparrow", "Tide",
)  # fmt: skip

PLURAL_NOUNS: tuple[str, ...] = tuple(
    n + ("es" if n.endswith(("x", "s")) else "s") for n in NOUNS if not n.endswith("y")
)

# A few genre flavours for artist names; other genres use the generic patterns only.
GENRE_NAME_PREFIXES: dict[str, tuple[str, ...]] = {
    "hip-hop": ("Lil", "MC", "Young", "Big"),
    "electronic": ("DJ", "Kid", "System"),
    "house": ("DJ", "Deep"),
    "k-pop": ("Team", "Star"),
    "classical": ("Orchestra of", "Ensemble"),
}

SONG_VERBS: tuple[str, ...] = (
    "Dancing", "Running", "Falling", "Waiting", "Burning", "Chasing", "Dreaming", "Holding",
    "Calling", "Breaking", "Drifting", "Singing", "Losing", "Finding", "Leaving",
)  # fmt: skip

SONG_NOUNS: tuple[str, ...] = (
    *NOUNS,
    "Lights", "Rain", "Summer", "Fire", "Stars", "Home", "Blue", "Gold", "Roses", "Smoke",
    "Morning", "Radio", "Wires", "Waves", "Diamonds", "Highway", "Shadows", "Bones",
)  # fmt: skip

# Platform pages a page_view lands on (path only; the origin is added when loading).
SITE_PAGES: tuple[str, ...] = (
    "/", "/explore", "/shows", "/shows/upcoming", "/me", "/me/votes", "/me/following",
    "/leaderboard", "/search", "/settings/notifications",
)  # fmt: skip

SHARE_CHANNELS: tuple[str, ...] = ("copy_link", "x", "whatsapp", "instagram", "facebook")

NOTIFICATION_CAMPAIGNS: tuple[tuple[str, str], ...] = (
    ("show_reminder", "push"),
    ("new_show_announced", "email"),
    ("setlist_posted", "push"),
    ("weekly_digest", "email"),
    ("vote_results", "in_app"),
)
