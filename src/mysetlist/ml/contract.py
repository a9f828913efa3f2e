"""The HTTP contract of the ML capability: predicted setlists, the setlist leaderboard,
artist and show recommendations, similar fans."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ShowStatus(StrEnum):
    scheduled = "scheduled"
    completed = "completed"
    cancelled = "cancelled"


class PredictionKind(StrEnum):
    model = "model"
    blend = "blend"


class Predictor(StrEnum):
    model = "model"
    crowd = "crowd"
    blend = "blend"


class PredictedSong(BaseModel):
    song_id: int
    title: str
    probability: float = Field(ge=0, le=1)
    reason: str


class SetlistPrediction(BaseModel):
    kind: PredictionKind
    model: str
    made_at: datetime
    history_shows: int = Field(description="past shows of the artist the model saw")
    voters: int = Field(description="fans whose votes a blend used")
    predicted_length: int
    songs: list[PredictedSong] = Field(description="most likely first")


class PredictionScore(BaseModel):
    predictor: Predictor
    voters: int
    songs_played: int
    shown: int | None = Field(description="songs the predictor showed")
    hits: int
    f1: float = Field(description="F1 at the length shown")
    f1_at_n: float | None = Field(description="F1 with the true length given")
    ndcg: float
    recall_at_10: float
    scored_at: datetime


class PredictedSetlist(BaseModel):
    show_id: int
    artist_id: int
    starts_at: datetime
    status: ShowStatus
    upcoming: bool
    prediction: SetlistPrediction
    scores: list[PredictionScore] = Field(description="once the show is scored")


class Leader(BaseModel):
    rank: int
    display_name: str
    scored_shows: int
    mean_f1: float
    model_f1_same_shows: float | None
    crowd_f1_same_shows: float | None
    is_you: bool


class Leaderboard(BaseModel):
    leaders: list[Leader]


class RecommenderModel(BaseModel):
    name: str
    version: int
    policy: str


class ArtistRecommendation(BaseModel):
    artist_id: int
    name: str | None
    genres: list[str]
    score: float
    reason: str


class ShowRecommendation(BaseModel):
    show_id: int
    artist_id: int
    artist: str | None
    starts_at: datetime
    venue: str
    city: str
    country: str
    score: float
    reason: str


class _Recommendations(BaseModel):
    user_id: uuid.UUID
    cold_start: bool = Field(description="no history: popular or genre-based picks")
    model: RecommenderModel | None = Field(description="none: no trained model yet")
    cached: bool


class ArtistRecommendations(_Recommendations):
    type: Literal["artists"]
    recommendations: list[ArtistRecommendation]


class ShowRecommendations(_Recommendations):
    type: Literal["shows"]
    recommendations: list[ShowRecommendation]


Recommendations = Annotated[
    ArtistRecommendations | ShowRecommendations, Field(discriminator="type")
]


class SimilarUsersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID | None = None  # another user: operators only
    limit: int = Field(default=10, ge=1, le=100)


class SimilarFan(BaseModel):
    display_name: str
    similarity: float
    shared_artists: list[str]
    user_id: str | None = Field(default=None, description="operators only")


class SimilarFans(BaseModel):
    user_id: str = Field(description="the fan asked about")
    similar_users: list[SimilarFan]
    cached: bool
